//! dom0's physical NIC: QEMU's transitional virtio-net over PCI, driven by
//! `dom0_tools::virtio::net` with the same kernel glue as the disks (`crate::disk`):
//! port I/O through the raised virtual IOPL, the INTx line as a pirq bound to an event
//! channel, DMA into machine-contiguous memory of dom0's heap. It is the bridge's
//! `eth0` port (`crate::net`).

use crate::disk::{bind_pirq, eoi, map_gsi, physdev, Dma, HwIo};
use alloc::format;
use alloc::string::String;
use dom0_tools::pci::{self, Mechanism1};
use dom0_tools::virtio::legacy::LegacyTransport;
use dom0_tools::virtio::net::{BufferCounts, NetProbe, VirtioNet};
use dom0_tools::virtio::{self, DeviceType};
use guest_sdk::{events, println};
use xen_abi::physdev::{PhysdevSetupGsi, PHYSDEVOP_SETUP_GSI};

/// The NIC.
pub struct Nic {
    dev: VirtioNet<HwIo, Dma>,
    pirq: u32,
    /// Frames sent and received, and send attempts refused (device busy).
    pub sent: u64,
    pub received: u64,
    pub busy: u64,
}

fn on_nic_event(_port: u32) {
    crate::net::NET_EVENT.store(true, core::sync::atomic::Ordering::Release);
}

impl Nic {
    /// The first transitional virtio-net on the PCI bus, started, or `None` (said why).
    /// Call after the disks are probed: a line they share is found through `disks`.
    pub fn probe(disks: &crate::disk::Disks) -> Option<Nic> {
        let mut cs = Mechanism1::new(HwIo);
        let f = pci::enumerate(&mut cs).into_iter().find(|f| {
            virtio::identify(f) == Some(virtio::VirtioPciId::Transitional(DeviceType::Net))
        })?;
        match start(&mut cs, &f, disks) {
            Ok(n) => {
                println!(
                    "dom0: nic {} virtio-net {}, pirq {}",
                    f.bdf,
                    dom0_tools::vifspec::format_mac(&n.dev.mac()),
                    n.pirq
                );
                Some(n)
            }
            Err(e) => {
                println!("dom0: nic {}: {e}", f.bdf);
                None
            }
        }
    }

    /// Its MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.dev.mac()
    }

    /// Acknowledge the interrupt, hand every received frame to `f`, reap finished
    /// transmissions, EOI. Returns the number of frames.
    pub fn receive(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let _ = self.dev.ack_interrupt();
        let mut n = 0;
        loop {
            match self.dev.receive(&mut f) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(_) => break,
            }
        }
        let _ = self.dev.reap_tx();
        eoi(self.pirq);
        self.received += n as u64;
        n
    }

    /// Send `frame`; false when the device has no free buffer now.
    pub fn transmit(&mut self, frame: &[u8]) -> bool {
        let _ = self.dev.reap_tx();
        match self.dev.transmit(frame) {
            Ok(()) => {
                self.sent += 1;
                true
            }
            Err(dom0_tools::virtio::net::NetError::Busy) => {
                self.busy += 1;
                false
            }
            // A frame the device cannot take (too short or long): dropped.
            Err(_) => true,
        }
    }
}

fn start(
    cs: &mut Mechanism1<HwIo>,
    f: &pci::PciFunction,
    disks: &crate::disk::Disks,
) -> Result<Nic, String> {
    let dev = virtio::probe_pci(cs, f).map_err(|e| format!("{e}"))?;
    let gsi = u32::from(dev.interrupt_line);
    if dev.interrupt_pin == 0 || gsi == 0xff {
        return Err(String::from("no INTx interrupt line"));
    }
    let probe =
        NetProbe::new(LegacyTransport::new(HwIo, dev.io_base)).map_err(|e| format!("{e}"))?;
    let want = BufferCounts::DEFAULT;
    let rxq = Dma::alloc(probe.rx_queue_bytes());
    let txq = Dma::alloc(probe.tx_queue_bytes());
    let bufs = Dma::alloc(probe.buffer_bytes(want));
    let (Some(rxq), Some(txq), Some(bufs)) = (rxq, txq, bufs) else {
        probe.fail();
        return Err(String::from("no machine-contiguous memory for the queues"));
    };
    if gsi >= 16 {
        let mut g = PhysdevSetupGsi {
            gsi: gsi as i32,
            triggering: 1,
            polarity: 1,
            _pad: 0,
        };
        let _ = physdev(PHYSDEVOP_SETUP_GSI, &mut g);
    }
    // A line shared with a disk: its pirq (= GSI) and port serve both (the disks'
    // handler raises the network's event too).
    let (pirq, port) = match disks.port_for_pirq(gsi) {
        Some(p) => (gsi, p),
        None => {
            let pirq = map_gsi(gsi).map_err(|e| format!("map_pirq GSI {gsi}: {e:?}"))?;
            let port = bind_pirq(pirq).map_err(|e| format!("bind_pirq {pirq}: {e:?}"))?;
            events::set_handler(port, on_nic_event).map_err(|e| format!("handler: {e:?}"))?;
            (pirq, port)
        }
    };
    let dev = probe
        .start(rxq, txq, bufs, want)
        .map_err(|e| format!("{e}"))?;
    events::unmask(port).map_err(|e| format!("unmask port {port}: {e:?}"))?;
    Ok(Nic {
        dev,
        pirq,
        sent: 0,
        received: 0,
        busy: 0,
    })
}
