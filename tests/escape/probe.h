/* Shared by the two halves of gatehouse-probe (probe.c: output, files,
 * credentials, namespaces, processes and the table; probe_kernel.c: kernel
 * surface, foreign ABIs, terminals, network, /proc and resource limits). */
#ifndef GATEHOUSE_PROBE_H
#define GATEHOUSE_PROBE_H

#include <sys/types.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#define X32_SYSCALL_BIT 0x40000000L

/* A result the probe printed itself (extra lines and its own result). */
#define PRINTED (-1)


extern const char *current_probe;
__attribute__((format(printf, 1, 2))) void say(const char *fmt, ...);
const char *errname(int e);
void result(int e);
int rc_errno(long rc);
int parse_long(const char *s, long *out);
int parse_fd(const char *s);
void reap(pid_t pid);

int probe_read_file(char **argv);
int probe_write_file(char **argv);
int probe_mkdir(char **argv);
int probe_setuid0(char **argv);
int probe_setgid0(char **argv);
int probe_setuid(char **argv);
int probe_setgid(char **argv);
int probe_chown(char **argv);
int probe_chmod(char **argv);
int probe_cap_raise(char **argv);
int probe_ambient_raise(char **argv);
int probe_mknod(char **argv);
int probe_sethostname(char **argv);
int probe_exec_setuid(char **argv);
int probe_caps(char **argv);
int probe_mount(char **argv);
int probe_umount(char **argv);
int probe_unshare_user(char **argv);
int probe_unshare_mount(char **argv);
int probe_unshare_net(char **argv);
int probe_setns(char **argv);
int probe_pivot_root(char **argv);
int probe_chroot(char **argv);
int probe_clone_newns(char **argv);
int probe_clone3(char **argv);
int probe_ptrace_pid1(char **argv);
int probe_ptrace_child(char **argv);
int probe_ptrace_traceme(char **argv);
int probe_find_string_in_proc(char **argv);
int probe_keyctl(char **argv);
int probe_add_key(char **argv);
int probe_bpf(char **argv);
int probe_perf_event_open(char **argv);
int probe_userfaultfd(char **argv);
int probe_io_uring_setup(char **argv);
int probe_open_by_handle_at(char **argv);
int probe_name_to_handle_at(char **argv);
int probe_kexec_load(char **argv);
int probe_init_module(char **argv);
int probe_finit_module(char **argv);
int probe_reboot(char **argv);
int probe_swapon(char **argv);
int probe_x32(char **argv);
int probe_int80(char **argv);
int probe_tiocsti(char **argv);
int probe_tioclinux(char **argv);
int probe_socket_raw(char **argv);
int probe_socket_packet(char **argv);
int probe_socket_netlink(char **argv);
int probe_connect_tcp(char **argv);
int probe_connect_unix(char **argv);
int probe_personality(char **argv);
int probe_list_fds(char **argv);
int probe_sysrq(char **argv);
int probe_write_proc_sys(char **argv);
int probe_rewrite_pid1_memory(char **argv);
int probe_fork_bomb(char **argv);
int probe_memory_bomb(char **argv);
int probe_daemonize(char **argv);

#endif
