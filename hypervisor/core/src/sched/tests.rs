use super::sim::Machine;
use super::*;

const MS: u64 = 1_000_000;
const ALL: CpuMask = CpuMask(u64::MAX);

fn v(dom: DomId, vcpu: u32) -> VcpuRef {
    VcpuRef { dom, vcpu }
}

/// A machine with one single-vCPU domain per entry of `doms` (weight, cap), all busy.
fn busy(nr_cpus: u32, doms: &[(u32, u32)]) -> Machine {
    let mut m = Machine::new(nr_cpus);
    for (d, &(w, c)) in doms.iter().enumerate() {
        let d = d as DomId;
        m.sched.add_domain(d).unwrap();
        m.sched.set_params(d, w, c).unwrap();
        m.sched.add_vcpu(v(d, 0), ALL).unwrap();
        let k = m.sched.vcpu_up(v(d, 0)).unwrap();
        m.deliver(k);
    }
    m
}

fn run_checked(m: &mut Machine, until: u64) {
    while m.now < until {
        let t = m.now + MS;
        m.run_until(t);
        assert_eq!(m.check(), None, "at {} ns", m.now);
    }
}

fn run_ns(m: &Machine, r: VcpuRef) -> u64 {
    m.sched.vcpu_info(r).unwrap().run_ns
}

#[test]
fn weights_256_512_share_one_cpu_1_to_2() {
    let mut m = busy(1, &[(256, 0), (512, 0)]);
    run_checked(&mut m, 3000 * MS);
    let (a, b) = (run_ns(&m, v(0, 0)), run_ns(&m, v(1, 0)));
    assert_eq!(a + b, 3000 * MS, "work conserving");
    let ratio = b as f64 / a as f64;
    assert!((1.8..=2.2).contains(&ratio), "ratio {ratio} ({a} vs {b})");
}

#[test]
fn cap_50_limits_busy_vcpu_to_half_a_cpu() {
    let mut m = busy(1, &[(256, 50)]);
    run_checked(&mut m, 3000 * MS);
    let share = run_ns(&m, v(0, 0)) as f64 / (3000 * MS) as f64;
    assert!((0.47..=0.53).contains(&share), "share {share}");
}

#[test]
fn cap_applies_to_whole_domain_next_to_an_uncapped_one() {
    // Two CPUs; dom0 has two busy vCPUs capped at 100% (one CPU) in total.
    let mut m = Machine::new(2);
    m.sched.add_domain(0).unwrap();
    m.sched.set_params(0, 256, 100).unwrap();
    for i in 0..2 {
        m.sched.add_vcpu(v(0, i), ALL).unwrap();
        let k = m.sched.vcpu_up(v(0, i)).unwrap();
        m.deliver(k);
    }
    run_checked(&mut m, 3000 * MS);
    let share = m.sched.dom_run_ns(0) as f64 / (3000 * MS) as f64;
    assert!((0.94..=1.06).contains(&share), "share {share}");
}

#[test]
fn affinity_is_respected_and_migration_reported() {
    let mut m = busy(4, &[(256, 0), (256, 0), (256, 0)]);
    let k = m.sched.set_affinity(v(0, 0), CpuMask::single(3)).unwrap();
    m.deliver(k);
    let k = m.sched.set_affinity(v(1, 0), CpuMask::single(3)).unwrap();
    m.deliver(k);
    run_checked(&mut m, 600 * MS);
    assert_eq!(
        m.sched.vcpu_info(v(0, 0)).unwrap().affinity,
        CpuMask::single(3)
    );
    // Sharing CPU 3, each got about half of it.
    let a = run_ns(&m, v(0, 0)) as f64;
    let b = run_ns(&m, v(1, 0)) as f64;
    assert!((a / b - 1.0).abs() < 0.15, "{a} vs {b}");
    // A pin to a CPU it is not on makes its CPU reschedule.
    let on = match m.sched.vcpu_info(v(2, 0)).unwrap().state {
        VcpuState::Running(c) => c,
        s => panic!("{s:?}"),
    };
    let other = if on == 0 { 1 } else { 0 };
    let k = m
        .sched
        .set_affinity(v(2, 0), CpuMask::single(other))
        .unwrap();
    assert!(k.contains(on));
    m.deliver(k);
    assert_eq!(
        m.sched.vcpu_info(v(2, 0)).unwrap().state,
        VcpuState::Running(other)
    );
    assert_eq!(m.check(), None);
}

#[test]
fn bad_params_and_affinity_are_einval_and_change_nothing() {
    let mut m = busy(2, &[(256, 0)]);
    let before = (m.sched.dom_params(0), m.sched.vcpu_info(v(0, 0)));
    assert_eq!(m.sched.set_params(0, 0, 0), Err(EINVAL));
    assert_eq!(m.sched.set_params(0, 65536, 0), Err(EINVAL));
    assert_eq!(m.sched.set_params(0, 256, 201), Err(EINVAL));
    assert_eq!(m.sched.set_params(9, 256, 0), Err(ESRCH));
    assert_eq!(m.sched.set_affinity(v(0, 0), CpuMask::EMPTY), Err(EINVAL));
    assert_eq!(
        m.sched.set_affinity(v(0, 0), CpuMask::single(5)),
        Err(EINVAL)
    );
    assert_eq!(m.sched.wake(v(0, 7)), Err(ESRCH));
    assert_eq!(m.sched.add_domain(0), Err(EEXIST));
    assert_eq!(m.sched.add_vcpu(v(0, 0), ALL), Err(EEXIST));
    assert_eq!((m.sched.dom_params(0), m.sched.vcpu_info(v(0, 0))), before);
    assert!(m.sched.set_params(0, 65535, 200).is_ok());
    assert_eq!(
        m.sched.dom_params(0),
        Some(DomParams {
            weight: 65535,
            cap: 200
        })
    );
}

#[test]
fn blocked_vcpu_never_runs_and_woken_one_runs_at_once() {
    let mut m = busy(1, &[(256, 0), (256, 0)]);
    run_checked(&mut m, 100 * MS);
    // Block whichever is running; the other takes over.
    let a = m.sched.current(0).unwrap();
    let k = m.sched.block(a).unwrap();
    assert!(k.contains(0));
    m.deliver(k);
    let b = m.sched.current(0).unwrap();
    assert_ne!(a, b);
    let ran = run_ns(&m, a);
    run_checked(&mut m, 400 * MS);
    assert_eq!(run_ns(&m, a), ran, "a blocked vCPU ran");
    assert_eq!(m.sched.vcpu_info(a).unwrap().state, VcpuState::Blocked);
    // Blocked long enough, `a` has credit: waking boosts it ahead of the busy `b`.
    m.run_until(m.now + 3 * MS);
    let k = m.sched.wake(a).unwrap();
    assert_eq!(
        k,
        CpuMask::single(0),
        "preempt the CPU running a lower priority"
    );
    m.deliver(k);
    assert_eq!(m.sched.current(0), Some(a));
    assert_eq!(m.sched.vcpu_info(a).unwrap().priority, Priority::Boost);
    // The boost lasts until its first tick.
    m.run_until((m.now / TICK_NS + 1) * TICK_NS);
    assert_ne!(m.sched.vcpu_info(a).unwrap().priority, Priority::Boost);
    assert_eq!(m.check(), None);
}

#[test]
fn wake_prefers_an_idle_cpu_of_its_affinity() {
    let mut m = busy(3, &[(256, 0)]);
    m.sched.add_domain(1).unwrap();
    m.sched.add_vcpu(v(1, 0), CpuMask(0b110)).unwrap();
    let k = m.sched.vcpu_up(v(1, 0)).unwrap();
    m.deliver(k);
    run_checked(&mut m, 50 * MS);
    let k = m.sched.block(v(1, 0)).unwrap();
    m.deliver(k);
    let busy_cpu = match m.sched.vcpu_info(v(0, 0)).unwrap().state {
        VcpuState::Running(c) => c,
        s => panic!("{s:?}"),
    };
    let k = m.sched.wake(v(1, 0)).unwrap();
    assert_eq!(k.iter().count(), 1);
    let c = k.first().unwrap();
    assert!(c != busy_cpu && c != 0, "kicked {c}, busy {busy_cpu}");
    m.deliver(k);
    assert_eq!(m.sched.current(c), Some(v(1, 0)));
    assert_eq!(m.check(), None);
}

#[test]
fn pause_stops_and_unpause_resumes_a_domain() {
    let mut m = Machine::new(2);
    for d in 0..2 {
        m.sched.add_domain(d).unwrap();
        for i in 0..2 {
            m.sched.add_vcpu(v(d, i), ALL).unwrap();
            let k = m.sched.vcpu_up(v(d, i)).unwrap();
            m.deliver(k);
        }
    }
    run_checked(&mut m, 100 * MS);
    let k = m.sched.pause(1).unwrap();
    m.deliver(k);
    let frozen = m.sched.dom_run_ns(1);
    run_checked(&mut m, 400 * MS);
    assert_eq!(m.sched.dom_run_ns(1), frozen);
    assert_eq!(m.sched.vcpu_info(v(1, 0)).unwrap().state, VcpuState::Paused);
    // Domain 0 had both CPUs meanwhile.
    assert!(m.sched.dom_run_ns(0) >= 2 * 300 * MS);
    let k = m.sched.unpause(1).unwrap();
    m.deliver(k);
    run_checked(&mut m, 700 * MS);
    assert!(m.sched.dom_run_ns(1) > frozen + 200 * MS);
}

#[test]
fn yield_lets_the_other_vcpu_run() {
    let mut m = busy(1, &[(256, 0), (256, 0)]);
    run_checked(&mut m, 45 * MS);
    let a = m.sched.current(0).unwrap();
    let k = m.sched.yield_vcpu(a).unwrap();
    m.deliver(k);
    assert_ne!(m.sched.current(0), Some(a));
    // Alone, a yielding vCPU keeps running.
    let b = m.sched.current(0).unwrap();
    let k = m.sched.block(a).unwrap();
    m.deliver(k);
    let k = m.sched.yield_vcpu(b).unwrap();
    m.deliver(k);
    assert_eq!(m.sched.current(0), Some(b));
}

#[test]
fn remove_and_offline_vcpus_stop_running() {
    let mut m = busy(2, &[(256, 0), (256, 0), (256, 0)]);
    run_checked(&mut m, 60 * MS);
    let k = m.sched.vcpu_down(v(1, 0)).unwrap();
    m.deliver(k);
    assert_eq!(
        m.sched.vcpu_info(v(1, 0)).unwrap().state,
        VcpuState::Offline
    );
    let k = m.sched.remove_domain(0).unwrap();
    m.deliver(k);
    assert!(m.sched.vcpu_info(v(0, 0)).is_none());
    assert_eq!(m.sched.remove_domain(0), Err(ESRCH));
    run_checked(&mut m, 200 * MS);
    assert!(matches!(
        m.sched.vcpu_info(v(2, 0)).unwrap().state,
        VcpuState::Running(_)
    ));
}

#[test]
fn hostile_inputs_do_not_panic() {
    let mut s = Scheduler::new(u32::MAX);
    assert_eq!(s.nr_cpus(), MAX_CPUS);
    let d = s.schedule(u32::MAX, u64::MAX);
    assert_eq!(d.next, None);
    s.tick(99, 0);
    s.add_domain(1).unwrap();
    s.add_vcpu(v(1, 0), ALL).unwrap();
    s.vcpu_up(v(1, 0)).unwrap();
    s.schedule(0, u64::MAX);
    s.tick(0, 0); // time going backwards
    s.schedule(0, 5);
    s.tick(0, u64::MAX);
    s.schedule(0, u64::MAX);
    assert_eq!(CpuMask::single(64), CpuMask::EMPTY);
    assert_eq!(CpuMask::first_n(64), CpuMask(u64::MAX));
}
