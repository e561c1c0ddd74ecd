//! `physdev_op` hypercall (`xen/physdev.h`): I/O privilege and physical IRQs.

pub const PHYSDEVOP_IRQ_UNMASK_NOTIFY: u32 = 4;
pub const PHYSDEVOP_IRQ_STATUS_QUERY: u32 = 5;
pub const PHYSDEVOP_SET_IOPL: u32 = 6;
pub const PHYSDEVOP_SET_IOBITMAP: u32 = 7;
pub const PHYSDEVOP_APIC_READ: u32 = 8;
pub const PHYSDEVOP_APIC_WRITE: u32 = 9;
pub const PHYSDEVOP_ALLOC_IRQ_VECTOR: u32 = 10;
pub const PHYSDEVOP_FREE_IRQ_VECTOR: u32 = 11;
pub const PHYSDEVOP_EOI: u32 = 12;
pub const PHYSDEVOP_MAP_PIRQ: u32 = 13;
pub const PHYSDEVOP_UNMAP_PIRQ: u32 = 14;
pub const PHYSDEVOP_MANAGE_PCI_ADD: u32 = 15;
pub const PHYSDEVOP_MANAGE_PCI_REMOVE: u32 = 16;
pub const PHYSDEVOP_PIRQ_EOI_GMFN_V1: u32 = 17;
pub const PHYSDEVOP_RESTORE_MSI: u32 = 19;
pub const PHYSDEVOP_MANAGE_PCI_ADD_EXT: u32 = 20;
pub const PHYSDEVOP_SETUP_GSI: u32 = 21;
pub const PHYSDEVOP_GET_FREE_PIRQ: u32 = 23;
pub const PHYSDEVOP_PCI_MMCFG_RESERVED: u32 = 24;
pub const PHYSDEVOP_PCI_DEVICE_ADD: u32 = 25;
pub const PHYSDEVOP_PCI_DEVICE_REMOVE: u32 = 26;
pub const PHYSDEVOP_RESTORE_MSI_EXT: u32 = 27;
pub const PHYSDEVOP_PIRQ_EOI_GMFN_V2: u32 = 28;
pub const PHYSDEVOP_DBGP_OP: u32 = 29;
pub const PHYSDEVOP_PREPARE_MSIX: u32 = 30;
pub const PHYSDEVOP_RELEASE_MSIX: u32 = 31;

pub const XENIRQSTAT_NEEDS_EOI: u32 = 1 << 0;
pub const XENIRQSTAT_SHARED: u32 = 1 << 1;

pub const MAP_PIRQ_TYPE_MSI: i32 = 0;
pub const MAP_PIRQ_TYPE_GSI: i32 = 1;
pub const MAP_PIRQ_TYPE_UNKNOWN: i32 = 2;
pub const MAP_PIRQ_TYPE_MSI_SEG: i32 = 3;
pub const MAP_PIRQ_TYPE_MULTI_MSI: i32 = 4;

/// `struct physdev_set_iopl` (IN): virtual IOPL (0..3) of the calling vCPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevSetIopl {
    /// IN: I/O privilege level.
    pub iopl: u32,
}
const _: () = assert!(core::mem::size_of::<PhysdevSetIopl>() == 4);

/// `struct physdev_set_iobitmap` (IN): a guest I/O-port permission bitmap.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevSetIobitmap {
    /// IN: guest handle of the bitmap (bit set = port inaccessible, as in a TSS).
    pub bitmap: u64,
    /// IN: number of ports the bitmap covers.
    pub nr_ports: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<PhysdevSetIobitmap>() == 16);

/// `struct physdev_eoi` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevEoi {
    /// IN: the pirq.
    pub irq: u32,
}
const _: () = assert!(core::mem::size_of::<PhysdevEoi>() == 4);

/// `struct physdev_irq_status_query` (IN irq, OUT flags).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevIrqStatusQuery {
    /// IN: the pirq.
    pub irq: u32,
    /// OUT: `XENIRQSTAT_*`.
    pub flags: u32,
}
const _: () = assert!(core::mem::size_of::<PhysdevIrqStatusQuery>() == 8);

/// `struct physdev_map_pirq` (IN/OUT).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevMapPirq {
    /// IN: domain to map into.
    pub domid: u16,
    pub _pad: u16,
    /// IN: `MAP_PIRQ_TYPE_*`.
    pub type_: i32,
    /// IN: GSI or MSI index.
    pub index: i32,
    /// IN/OUT: pirq (-1 = allocate).
    pub pirq: i32,
    /// IN: PCI bus (MSI).
    pub bus: i32,
    /// IN: PCI devfn (MSI).
    pub devfn: i32,
    /// IN/OUT: MSI-X entry / number of vectors.
    pub entry_nr: i32,
    pub _pad2: u32,
    /// IN: MSI-X table base.
    pub table_base: u64,
}
const _: () = assert!(core::mem::size_of::<PhysdevMapPirq>() == 40);

/// `struct physdev_unmap_pirq` (IN).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevUnmapPirq {
    pub domid: u16,
    pub _pad: u16,
    pub pirq: i32,
}
const _: () = assert!(core::mem::size_of::<PhysdevUnmapPirq>() == 8);

/// `struct physdev_setup_gsi` (IN): trigger mode and polarity of a GSI (dom0 learns them
/// from ACPI).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevSetupGsi {
    pub gsi: i32,
    /// 0 edge, 1 level.
    pub triggering: u8,
    /// 0 active high, 1 active low.
    pub polarity: u8,
    pub _pad: u16,
}
const _: () = assert!(core::mem::size_of::<PhysdevSetupGsi>() == 8);
