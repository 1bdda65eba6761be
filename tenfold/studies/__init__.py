"""One package per study, named by its slug: its params model, its science and an `outcome` module that turns
measured results into claims, tables, notes and figures. A study imports core and components, never another study.
"""
