"""tenfold.core.runtime.machine_info: the MLflow tags that tell two hosts apart when their floats differ."""

from tenfold.core.runtime import cpu_identity, describe_host, machine_info

ZEN3 = "cpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\nstepping\t: 1\nflags\t\t: fpu sse2 avx avx2 fma\n"


def test_cpu_identity_reads_family_model_stepping_and_vector_width():
    assert cpu_identity(ZEN3) == {"name": "AMD EPYC", "family": "25", "model": "1", "stepping": "1", "vector": "AVX2"}
    other = cpu_identity(ZEN3.replace("model\t\t: 1", "model\t\t: 17").replace("fma", "fma avx512f"))
    assert other["name"] == "AMD EPYC" and other["model"] == "17" and other["vector"] == "AVX-512"
    assert cpu_identity("") == {"name": "?", "family": "?", "model": "?", "stepping": "?", "vector": "no AVX2"}
    assert describe_host(ZEN3, "AVX2").startswith("AMD EPYC (family 25, model 1, stepping 1; AVX2;")


def test_machine_info_tags_name_this_cpu_beyond_its_model_name():
    tags = machine_info()
    here = cpu_identity()
    assert tags["machine.cpu_family"] == here["family"] and tags["machine.cpu_model"] == here["model"]
    assert tags["machine.cpu_stepping"] == here["stepping"] and tags["machine.cpu_vector"] == here["vector"]
    assert tags["machine.cpu"] not in ("", "?") and tags["machine.torch_threads"].isdigit()
    assert all(isinstance(v, str) and v for v in tags.values())
