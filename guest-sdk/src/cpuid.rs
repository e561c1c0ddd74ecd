//! `cpuid` through Xen's forced-emulation prefix (`ud2; .ascii "xen"; cpuid`), so the
//! hypervisor's policy (not the raw CPU) answers.

/// `cpuid(leaf, subleaf)` as the hypervisor presents it: `[eax, ebx, ecx, edx]`.
#[cfg(target_os = "none")]
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let (eax, ebx, ecx, edx): (u32, u64, u32, u32);
    // SAFETY: the prefix raises #UD, which the PV hypervisor recognises and emulates as
    // `cpuid`, writing eax/ebx/ecx/edx only. rbx is reserved by LLVM, so it is saved in
    // a scratch register and swapped back.
    unsafe {
        core::arch::asm!(
            "mov {tmp}, rbx",
            ".byte 0x0f, 0x0b, 0x78, 0x65, 0x6e",
            "cpuid",
            "xchg {tmp}, rbx",
            tmp = out(reg) ebx,
            inlateout("eax") leaf => eax,
            inlateout("ecx") subleaf => ecx,
            lateout("edx") edx,
        );
    }
    [eax, ebx as u32, ecx, edx]
}

/// Host stand-in: the CPU's own `cpuid`.
#[cfg(not(target_os = "none"))]
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// The 12-byte vendor string from leaf 0 registers.
pub fn vendor(leaf0: [u32; 4]) -> [u8; 12] {
    let mut v = [0u8; 12];
    for (i, reg) in [leaf0[1], leaf0[3], leaf0[2]].iter().enumerate() {
        if let Some(dst) = v.get_mut(i * 4..i * 4 + 4) {
            dst.copy_from_slice(&reg.to_le_bytes());
        }
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn vendor_order_is_ebx_edx_ecx() {
        let regs = [
            0,
            u32::from_le_bytes(*b"Genu"),
            u32::from_le_bytes(*b"ntel"),
            u32::from_le_bytes(*b"ineI"),
        ];
        assert_eq!(&super::vendor(regs), b"GenuineIntel");
    }
}
