/*
 * tagbox-seccomp-export PROFILE FILE: writes the BPF program of a Tagbox
 * sandbox seccomp profile to FILE, built with libseccomp (never by hand).
 * bubblewrap loads it with `--seccomp FD`.
 *
 * Two profiles, stacked: `outer` applies to everything in a sandbox (the agent,
 * its relay, the nested bubblewrap that starts each command); `command` is
 * added on top for every command. The outer profile must let the nested
 * bubblewrap build a command's namespaces (clone/unshare of namespaces, mount,
 * pivot_root); the command profile refuses exactly that. Refused calls fail
 * with EPERM (clone3 with ENOSYS, so that libc falls back to clone, whose
 * flags a filter can see). Calls from another ABI (i386, x32) kill the process.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Refused in every sandbox process: kernel attack surface, host-global state, other processes' memory. */
static const char *const DENIED_EVERYWHERE[] = {
  /* kernel keyring: neither read the host user's keys nor fill their quota */
  "keyctl", "add_key", "request_key",
  /* other processes' memory */
  "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
  /* large kernel attack surface */
  "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
  /* file handles bypass the mount namespace */
  "open_by_handle_at", "name_to_handle_at",
  /* host-global state */
  "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
  "swapon", "swapoff", "acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
  "quotactl", "quotactl_fd", "syslog", "lookup_dcookie", "iopl", "ioperm", "uselib", "ustat", "sysfs",
  "_sysctl", "nfsservctl", "vm86", "vm86old", "fanotify_init", "setns",
  /* the new mount API (bubblewrap uses the classic one) */
  "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
  NULL,
};

/* Refused to commands: making namespaces and mounts (the outer profile allows them for the nested bwrap). */
static const char *const DENIED_TO_COMMANDS[] = {
  "mount", "umount", "umount2", "pivot_root", "unshare", "chroot", NULL,
};

static int deny_all(scmp_filter_ctx ctx, const char *const *names) {
  for (; *names; names++) {
    int nr = seccomp_syscall_resolve_name(*names);
    if (nr == __NR_SCMP_ERROR) continue; /* not on this architecture */
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    if (rc < 0) {
      fprintf(stderr, "tagbox-seccomp-export: %s: %s\n", *names, strerror(-rc));
      return rc;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "outer") != 0 && strcmp(argv[1], "command") != 0)) {
    fprintf(stderr, "usage: tagbox-seccomp-export outer|command FILE\n");
    return 2;
  }
  int command = strcmp(argv[1], "command") == 0;
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) return 1;
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc == 0) rc = deny_all(ctx, DENIED_EVERYWHERE);
  /* Terminal input injection into whatever terminal a process can reach. */
  if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu, TIOCSTI));
  if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu, TIOCLINUX));
  if (command) {
    if (rc == 0) rc = deny_all(ctx, DENIED_TO_COMMANDS);
    /* No new namespaces of any kind (one rule per flag: rules are or-ed); clone3's flags live in memory a filter cannot read, so it is ENOSYS. */
    static const unsigned long NAMESPACES[] = {
      CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWCGROUP,
    };
    for (size_t i = 0; rc == 0 && i < sizeof NAMESPACES / sizeof NAMESPACES[0]; i++) {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, NAMESPACES[i], NAMESPACES[i]));
    }
    if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  }
  if (rc < 0) {
    fprintf(stderr, "tagbox-seccomp-export: cannot build the %s profile: %s\n", argv[1], strerror(-rc));
    seccomp_release(ctx);
    return 1;
  }
  int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    perror(argv[2]);
    seccomp_release(ctx);
    return 1;
  }
  rc = seccomp_export_bpf(ctx, fd);
  seccomp_release(ctx);
  if (rc < 0 || close(fd) < 0) {
    fprintf(stderr, "tagbox-seccomp-export: cannot write %s\n", argv[2]);
    return 1;
  }
  return 0;
}
