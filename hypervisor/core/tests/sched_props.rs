//! Property tests of the credit scheduler on a simulated machine (`sched::sim`): random
//! machines (2-4 CPUs, 1-6 vCPUs in 1-3 domains, random weights, caps and affinities) and
//! random block/wake/pause/unpause/yield/set_params/set_affinity/up/down events
//! interleaved with time. After every step: S1 (one CPU per vCPU, affinity), S2 (nothing
//! blocked, paused, offline or parked runs), S3 (no CPU idles while a vCPU that may run
//! there waits) and S5 (failed operations change nothing). A second property checks S4:
//! always-busy vCPUs converge to their water-filled weighted shares within 10%.

use hv_core::sched::sim::Machine;
use hv_core::sched::{CpuMask, VcpuRef, TICK_NS, TSLICE_NS};
use proptest::prelude::*;

const MS: u64 = 1_000_000;

#[derive(Clone, Debug)]
struct Setup {
    cpus: u32,
    /// Per domain: weight, cap, vCPU affinities.
    doms: Vec<(u32, u32, Vec<u64>)>,
}

#[derive(Clone, Debug)]
enum Op {
    Run(u64),
    Block(usize),
    Wake(usize),
    Pause(usize),
    Unpause(usize),
    Yield(usize),
    SetParams(usize, u32, u32),
    SetAffinity(usize, u64),
    Down(usize),
    Up(usize),
}

fn setup() -> impl Strategy<Value = Setup> {
    (2u32..=4).prop_flat_map(|cpus| {
        let full = (1u64 << cpus) - 1;
        let aff = prop_oneof![2 => Just(full), 1 => 1..=full];
        let cap = prop_oneof![3 => Just(0u32), 1 => 10u32..=100 * cpus];
        let dom = (1u32..=1024, cap, proptest::collection::vec(aff, 1..=2));
        proptest::collection::vec(dom, 1..=3).prop_map(move |doms| Setup { cpus, doms })
    })
}

fn op() -> impl Strategy<Value = Op> {
    let v = 0usize..6;
    let d = 0usize..3;
    prop_oneof![
        6 => (1u64..=40).prop_map(|ms| Op::Run(ms * MS / 2)),
        3 => v.clone().prop_map(Op::Block),
        3 => v.clone().prop_map(Op::Wake),
        1 => d.clone().prop_map(Op::Pause),
        1 => d.clone().prop_map(Op::Unpause),
        1 => v.clone().prop_map(Op::Yield),
        1 => (d, 0u32..=70000, 0u32..=450).prop_map(|(d, w, c)| Op::SetParams(d, w, c)),
        1 => (v.clone(), 0u64..32).prop_map(|(v, m)| Op::SetAffinity(v, m)),
        1 => v.clone().prop_map(Op::Down),
        1 => v.prop_map(Op::Up),
    ]
}

fn build(s: &Setup) -> (Machine, Vec<VcpuRef>) {
    let mut m = Machine::new(s.cpus);
    let mut vs = Vec::new();
    for (d, (w, c, affs)) in s.doms.iter().enumerate() {
        let d = d as u16;
        m.sched.add_domain(d).expect("valid setup");
        m.sched.set_params(d, *w, *c).expect("valid setup");
        for (i, &a) in affs.iter().enumerate() {
            let r = VcpuRef {
                dom: d,
                vcpu: i as u32,
            };
            m.sched.add_vcpu(r, CpuMask(a)).expect("valid setup");
            let k = m.sched.vcpu_up(r).expect("valid setup");
            m.deliver(k);
            vs.push(r);
        }
    }
    (m, vs)
}

fn apply(m: &mut Machine, vs: &[VcpuRef], ndoms: usize, op: &Op) {
    let vcpu = |i: usize| vs[i % vs.len()];
    let dom = |i: usize| (i % ndoms) as u16;
    let r = match *op {
        Op::Run(ns) => {
            // Check after every event of the run, not only at its end.
            let end = m.now + ns;
            while m.now < end {
                let t = (m.now + MS / 2).min(end);
                m.run_until(t);
                if let Some(v) = m.check() {
                    panic!("{v:?} at {} during {op:?}", m.now);
                }
            }
            return;
        }
        // A vCPU blocks itself, so only while it runs (as SCHEDOP_block).
        Op::Block(i) => {
            let v = vcpu(i);
            if !(0..m.sched.nr_cpus()).any(|c| m.sched.current(c) == Some(v)) {
                return;
            }
            m.sched.block(v)
        }
        Op::Wake(i) => m.sched.wake(vcpu(i)),
        Op::Pause(d) => m.sched.pause(dom(d)),
        Op::Unpause(d) => m.sched.unpause(dom(d)),
        Op::Yield(i) => m.sched.yield_vcpu(vcpu(i)),
        Op::SetParams(d, w, c) => {
            let before = m.sched.dom_params(dom(d));
            let r = m.sched.set_params(dom(d), w, c);
            if r.is_err() {
                assert_eq!(before, m.sched.dom_params(dom(d)), "S5");
                assert!(w == 0 || w > 65535 || c > 100 * m.sched.nr_cpus());
            }
            r
        }
        Op::SetAffinity(i, mask) => {
            let before = m.sched.vcpu_info(vcpu(i));
            let r = m.sched.set_affinity(vcpu(i), CpuMask(mask));
            if r.is_err() {
                assert_eq!(before, m.sched.vcpu_info(vcpu(i)), "S5");
                assert_eq!(mask & ((1 << m.sched.nr_cpus()) - 1), 0);
            }
            r
        }
        Op::Down(i) => m.sched.vcpu_down(vcpu(i)),
        Op::Up(i) => m.sched.vcpu_up(vcpu(i)),
    };
    if let Ok(k) = r {
        m.deliver(k);
    }
}

/// Weighted max-min fair shares (in CPUs) of always-busy vCPUs with the given weights,
/// none above one CPU.
fn water_fill(cpus: u32, weights: &[u32]) -> Vec<f64> {
    let mut share = vec![0.0; weights.len()];
    let mut sat = vec![false; weights.len()];
    let mut left = f64::from(cpus);
    loop {
        let wsum: f64 = (0..weights.len())
            .filter(|&i| !sat[i])
            .map(|i| f64::from(weights[i]))
            .sum();
        if wsum == 0.0 {
            return share;
        }
        let mut any = false;
        for i in 0..weights.len() {
            if !sat[i] && left * f64::from(weights[i]) / wsum >= 1.0 {
                sat[i] = true;
                share[i] = 1.0;
                any = true;
            }
        }
        left = f64::from(cpus) - share.iter().sum::<f64>();
        if !any {
            for i in 0..weights.len() {
                if !sat[i] {
                    share[i] = left * f64::from(weights[i]) / wsum;
                }
            }
            return share;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// S1, S2, S3, S5 after every step of a random run.
    #[test]
    fn sched_invariants(s in setup(), ops in proptest::collection::vec(op(), 1..80)) {
        let (mut m, vs) = build(&s);
        prop_assert_eq!(m.check(), None);
        for op in &ops {
            apply(&mut m, &vs, s.doms.len(), op);
            prop_assert_eq!(m.check(), None, "after {:?} at {}", op, m.now);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// S4: uncapped, unpinned, always-busy vCPUs converge to their weighted shares.
    #[test]
    fn sched_weights_converge(
        cpus in 1u32..=4,
        doms in proptest::collection::vec((1u32..=1024, 1usize..=2), 1..=3),
    ) {
        let setup = Setup {
            cpus,
            doms: doms.iter().map(|&(w, n)| (w, 0, vec![u64::MAX; n])).collect(),
        };
        let (mut m, vs) = build(&setup);
        let weights: Vec<u32> = vs.iter().map(|v| doms[v.dom as usize].0).collect();
        let total = 3000 * MS;
        m.run_until(total);
        prop_assert_eq!(m.check(), None);
        let expect = water_fill(cpus, &weights);
        for (i, v) in vs.iter().enumerate() {
            let got = m.sched.vcpu_info(*v).expect("valid setup").run_ns as f64 / total as f64;
            // 10% of the expected share, plus one tick per second of slack for rounding,
            // plus one slice over the run: CPU comes in slices of up to TSLICE_NS (a
            // weight-1 vCPU next to heavy ones gets a whole slice when its credit
            // overtakes theirs, as in credit1), which a 3 s window does not average out.
            let tol = 0.10 * expect[i] + (TICK_NS as f64 / 1e9) + TSLICE_NS as f64 / total as f64;
            prop_assert!(
                (got - expect[i]).abs() <= tol,
                "vCPU {:?}: got {:.3} CPUs, expected {:.3} (weights {:?})",
                v, got, expect[i], weights
            );
        }
    }
}
