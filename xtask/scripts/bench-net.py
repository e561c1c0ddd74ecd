#!/usr/bin/env python3
"""The network benchmark of docs/perf.md, typed by hand: boots IMAGES/HV with dom0 under
the benchmark's QEMU settings (one CPU, -icount shift=0,sleep=off) and types the same
commands `cargo xtask bench net` types, printing the `bench:` lines in order.
Usage: bench-net.py IMAGES_DIR hypervisor|xen-4.17"""
import subprocess, sys, threading, time

img, hv = sys.argv[1], sys.argv[2]
args = ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "1",
        "-icount", "shift=0,sleep=off", "-display", "none", "-serial", "stdio",
        "-monitor", "none", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
        "-kernel", f"{img}/{hv}", "-append", "console=com1 dom0_mem=128M",
        "-initrd", f"{img}/dom0 dom0,{img}/ramdisk.cpio"]
p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL)
out = []
threading.Thread(target=lambda: [out.append(b.decode(errors="replace"))
                                 for b in iter(lambda: p.stdout.read1(4096), b"")],
                 daemon=True).start()

def wait(s, t=600):
    end = time.time() + t
    while s not in "".join(out):
        if time.time() > end:
            sys.exit(f"timed out waiting for {s!r}")
        time.sleep(0.05)

def run(cmd, done):
    n = len("".join(out))
    p.stdin.write((cmd + "\n").encode()); p.stdin.flush()
    end = time.time() + 600
    while done not in "".join(out)[n:]:
        if time.time() > end:
            sys.exit(f"timed out: {cmd}")
        time.sleep(0.05)
    time.sleep(0.5)
    print(f"# {cmd}")
    for l in "".join(out)[n:].splitlines():
        if l.startswith("bench:") or "FAIL" in l:
            print(l)

wait("xl> ")
run("netbench loopback 10000000", "Echo 1000 of 1000")
run("xl create /etc/xen/netdemo-server.cfg", "created")
time.sleep(5)
run("netbench rr 10.0.2.21 5001 3", "netbench: ")
run("netbench get 10.0.2.21 5001 10000000", "netbench: ")
run("netbench rr 10.0.2.21 5001 1000", "netbench: ")
run("xl create -c /etc/xen/netdemo-client.cfg", "netdemo: done")
run("xl create -c /etc/xen/netdemo-client.cfg 'cmdline=\"rr=10.0.2.21:5001 count=1000\"'",
    "netdemo: done")
p.kill()
