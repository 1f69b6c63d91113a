/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Syscall numbers and argument registers the sensor dispatches on. vmlinux.h carries no
 * __NR_* constants, so they live here, per architecture.
 */
#ifndef AGENTGUARD_SYSCALLS_H
#define AGENTGUARD_SYSCALLS_H

#if defined(__TARGET_ARCH_x86)
#define NR_read 0
#define NR_write 1
#define NR_open 2
#define NR_pread64 17
#define NR_pwrite64 18
#define NR_readv 19
#define NR_writev 20
#define NR_sendfile 40
#define NR_splice 275
#define NR_preadv 295
#define NR_pwritev 296
#define NR_recvmmsg 299
#define NR_copy_file_range 326
#define NR_preadv2 327
#define NR_pwritev2 328
#define NR_ioctl 16
#define NR_socket 41
#define NR_kill 62
#define NR_rt_sigqueueinfo 129
#define NR_utime 132
#define NR_mknod 133
#define NR_pivot_root 155
#define NR_mount 165
#define NR_umount2 166
#define NR_setxattr 188
#define NR_lsetxattr 189
#define NR_fsetxattr 190
#define NR_tkill 200
#define NR_tgkill 234
#define NR_utimes 235
#define NR_mknodat 259
#define NR_rt_tgsigqueueinfo 297
#define NR_process_vm_readv 310
#define NR_process_vm_writev 311
#define NR_pidfd_send_signal 424
#define NR_open_tree 428
#define NR_move_mount 429
#define NR_fsopen 430
#define NR_fsmount 432
#define NR_fspick 433
#define NR_clone3 435
#define NR_pidfd_getfd 438
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_sendmsg 46
#define NR_recvmsg 47
#define NR_connect 42
#define NR_bind 49
#define NR_listen 50
#define NR_execve 59
#define NR_rename 82
#define NR_mkdir 83
#define NR_rmdir 84
#define NR_creat 85
#define NR_link 86
#define NR_unlink 87
#define NR_symlink 88
#define NR_truncate 76
#define NR_chmod 90
#define NR_fchmod 91
#define NR_chown 92
#define NR_fchown 93
#define NR_lchown 94
#define NR_ptrace 101
#define NR_setuid 105
#define NR_setgid 106
#define NR_setreuid 113
#define NR_setregid 114
#define NR_setresuid 117
#define NR_setresgid 119
#define NR_setfsuid 122
#define NR_setfsgid 123
#define NR_capset 126
#define NR_init_module 175
#define NR_openat 257
#define NR_mkdirat 258
#define NR_fchownat 260
#define NR_futimesat 261
#define NR_unlinkat 263
#define NR_renameat 264
#define NR_linkat 265
#define NR_symlinkat 266
#define NR_fchmodat 268
#define NR_utimensat 280
#define NR_open_by_handle_at 304
#define NR_sendmmsg 307
#define NR_finit_module 313
#define NR_renameat2 316
#define NR_memfd_create 319
#define NR_bpf 321
#define NR_execveat 322
#define NR_io_uring_setup 425
#define NR_io_setup 206
#define NR_openat2 437
#define NR_fchmodat2 452

/* The saved user registers hold the syscall's arguments until it returns. */
#define SC_ARG0(r) ((r)->di)
#define SC_ARG1(r) ((r)->si)
#define SC_ARG2(r) ((r)->dx)
#define SC_ARG3(r) ((r)->r10)
#define SC_ARG4(r) ((r)->r8)
#define SC_ARG5(r) ((r)->r9)
#define SC_NR(r) ((r)->orig_ax)
#else
#error "agentguard's sensor supports x86_64 only for now (syscalls.h)"
#endif

#endif
