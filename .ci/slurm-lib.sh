# Shared by slurm-up.sh and slurm-down.sh (sourced).
# A pid is "alive" if it exists, is not a zombie (nothing reaps orphans in some sandboxes)
# and runs $2.
alive() {
  local pid=$1 name=$2 stat
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  stat=$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f1)
  [ "$stat" != Z ] && [ "$stat" != X ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]
}
pidof_file() { cat "$1" 2>/dev/null || true; }
