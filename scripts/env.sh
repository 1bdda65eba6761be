# Environment for every tenfold command (sourced by the Makefile): the venv on PATH, this checkout first on
# PYTHONPATH, and the defaults of scripts/defaults.env (no telemetry, local state) unless already set.
export PATH="$PWD/.venv/bin:$PATH"
while IFS='=' read -r _key _value; do
  case "$_key" in ''|'#'*) continue ;; esac
  case "$_value" in ./*) _value="$PWD/${_value#./}" ;; esac
  if [ -z "${!_key:-}" ]; then export "$_key=$_value"; fi
done < "$PWD/scripts/defaults.env"
unset _key _value
# The venv is shared by every checkout with the same pyproject.toml (its editable install points at whichever
# checkout ran setup last): put this checkout first so `tenfold` and the tests always run the code here.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
