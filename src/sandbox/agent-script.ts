import { COMMAND_SECCOMP_PATH } from './bwrap-args.js';

/**
 * The sandbox's first process, a POSIX shell script (a few hundred KiB of
 * memory, where a Node agent would take ~40 MB). It starts the relay to the
 * proxy socket (native/relay.c: one process for every connection; its stderr
 * reaches the host), says `ready` once the relay listens, then runs commands the
 * host asks for on the request FIFO:
 *   run ID SLOT STDIN   run args/ID.sh (argv) with options args/ID and the slot's FIFOs
 *   kill ID             SIGKILL that command's pid namespace
 * and reports `started ID` and `done ID STATUS` on its stdout (the host's pipe).
 * Each command runs in a nested bubblewrap: its own pid namespace (nothing it
 * starts outlives it) with its own /proc, user namespaces disabled, the command
 * seccomp profile (handed over on fd 9), /run/tagbox hidden.
 *
 * Arguments: CPU seconds, data-segment KiB (0: none), processes (0: none).
 */
export const AGENT_SCRIPT = String.raw`set -u
ctl=/run/tagbox/ctl
state=/run/tagbox/state
cpu=$1 data=$2 nproc=$3
seccomp=${COMMAND_SECCOMP_PATH}

/run/tagbox/native/tagbox-relay 127.0.0.1:3128 /run/tagbox/proxy.sock </dev/null >/dev/null &
relay=$!
n=0
until grep -q '^ *[0-9]*: 0100007F:0C38 00000000:0000 0A ' /proc/net/tcp; do
  n=$((n + 1))
  if [ "$n" -gt 500 ] || ! kill -0 "$relay" 2>/dev/null; then echo "fatal the relay to the proxy did not start"; exit 1; fi
  sleep 0.005
done

run() {
  exec 8<&-
  id=$1 slot=$2 input=$3
  ulimit -c 0
  ulimit -t $((cpu + 1))
  ulimit -S -t "$cpu"
  [ "$data" = 0 ] || ulimit -d "$data"
  [ "$nproc" = 0 ] || ulimit -u "$nproc"
  # When the sandbox runs out of memory, the command goes before the relay.
  echo 500 >/proc/self/oom_score_adj 2>/dev/null
  s=$ctl/slot$slot
  if [ "$input" = 1 ]; then exec 4<"$s.in"; else exec 4</dev/null; fi
  exec 5>"$s.out" 6>"$s.err"
  . "$ctl/args/$id.sh"
  bwrap --args 3 -- "$@" 3<"$ctl/args/$id" 9<"$seccomp" <&4 >&5 2>&6 4<&- 5>&- 6>&- &
  pid=$!
  exec 4<&- 5>&- 6>&-
  echo "$pid" >"$state/$id"
  echo "started $id"
  wait "$pid"
  rc=$?
  rm -f "$state/$id"
  echo "done $id $rc"
}

exec 8<>"$ctl/requests"
echo ready
while read -r op id a b <&8; do
  case $op in
    run) run "$id" "$a" "$b" & ;;
    kill) { read -r pid <"$state/$id" && kill -KILL "$pid"; } 2>/dev/null ;;
  esac
done
`;
