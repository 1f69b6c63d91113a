#!/usr/bin/env bash
# In the VM, when a test did not finish in its time: what the kernel shows of the
# processes now, for the next engineer to find where it stopped. Every user process's
# state and wait channel, then the kernel's log with the blocked tasks' stacks (asked of
# it here) and whatever its hung-task detector said before.
echo "--- the processes, as the kernel shows them:"
ps -eo pid=,ppid=,stat=,wchan:32=,args= | awk '$5 !~ /^\[/' | cut -c1-200
echo w > /proc/sysrq-trigger 2>/dev/null
sleep 1
echo "--- the kernel's log:"
dmesg | tail -n 200
