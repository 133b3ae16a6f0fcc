#!/bin/sh
# boot-trace.sh: the VM's creation, life and destruction under ftrace, for
# BENCHMARKS.md ("The VM's creation and life"). Run inside the nested KVM
# as NESTED_CMD, after a `vmm bench -workloads boot -dir /tmp/b` (for the
# image and the floor's state): each variant (floor, or a vmm binary in
# /bin) runs RUNS times in turn; the function_graph trace goes to
# /tmp/out/trace.txt, with a marker line before and after each run.
#   BOOT_TRACE_VARIANTS  default "floor vmm-before vmm"
#   BOOT_TRACE_RUNS      default 8
#   BOOT_TRACE_GAP       seconds between runs, default 0 (back to back)
T=/sys/kernel/tracing
B=/tmp/b
[ -e $T/trace ] || mount -t tracefs nodev $T || exit 1
[ -f $B/boot.bin ] || { echo "boot-trace: no $B/boot.bin: run vmm bench -workloads boot -dir $B first"; exit 1; }
mkdir -p /tmp/out
echo 0 >$T/tracing_on
echo function_graph >$T/current_tracer
for f in kvm_dev_ioctl kvm_destroy_vm cgroup_attach_task_all percpu_down_write kvm_arch_vcpu_ioctl_run kvm_mmu_uninit_vm; do
	echo $f >>$T/set_ftrace_filter || echo "boot-trace: cannot trace $f"
done
for o in funcgraph-abstime funcgraph-proc nofuncgraph-irqs; do echo $o >$T/trace_options; done
echo 30000 >$T/buffer_size_kb
echo >$T/trace
run() {
	if [ "$1" = floor ]; then
		/bin/walkvm-floor -s $B/boot.state </dev/null >/dev/null 2>&1
	else
		/bin/$1 run -verify off -stats off -mem 67108864 -load 0x1000 -entry real -timeout 10s $B/boot.bin </dev/null
	fi
}
echo 1 >$T/tracing_on
i=0
while [ $i -lt "${BOOT_TRACE_RUNS:-8}" ]; do
	i=$((i + 1))
	for v in ${BOOT_TRACE_VARIANTS:-floor vmm-before vmm}; do
		echo "RUN $v $i" >$T/trace_marker
		run $v
		echo "END $v $i" >$T/trace_marker
		sleep "${BOOT_TRACE_GAP:-0}"
	done
done
echo 0 >$T/tracing_on
cat $T/trace >/tmp/out/trace.txt
echo "boot-trace: $(wc -l </tmp/out/trace.txt) lines in /tmp/out/trace.txt"
