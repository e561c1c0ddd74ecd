//! blkback in dom0: serves each guest's virtual disks (`disk = [...]` in `xl.cfg`) over
//! Xen's `blkif` protocol, with pv-drivers' backend core deciding what each request
//! may do.
//!
//! Per disk, as libxl and Linux's blkback do it through XenStore:
//! 1. at create, the frontend directory `/local/domain/<d>/device/vbd/<devid>` (the
//!    guest's) and the backend directory `/local/domain/0/backend/vbd/<d>/<devid>`
//!    (dom0's, readable by the guest), both `state = 1`; then the backend's
//!    `sectors`, `info`, `sector-size`, features and `state = 2` (InitWait);
//! 2. once the frontend is `Initialised` (3) or `Connected` (4): map its ring grant,
//!    bind its event channel, `state = 4` (Connected); requests are then served on
//!    every event: granted data copied with `GNTTABOP_copy` through a bounce page
//!    (never mapped), the response pushed, the frontend notified;
//! 3. frontend `Closing`: unmap, unbind, `state = 5` (Closing); frontend `Closed`:
//!    `state = 6` (Linux's blkback does the same; the frontend waits for our `Closing`
//!    before it says `Closed`). A disk `xl block-detach` asked for goes (both
//!    directories) once the frontend is `Closed`, as libxl waits for it: not at its
//!    `Closing`, while blkfront still writes its `state` and reads ours (or at once with
//!    `-f`, or when it never connected). The domain gone: unmap, unbind, remove.
//!
//! Backing stores: an image file from dom0's ramdisk (`target=/images/x.img`), read in
//! place, with what guests write kept in a bounded copy-on-write overlay in dom0's heap
//! for dom0's lifetime, so what a guest wrote and flushed is there for the next guest of
//! that image.

use crate::foreign::{CopyGrants, RingPage, Slot};
use crate::xenstored::Xenstored;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;
use core::sync::atomic::{AtomicBool, Ordering};
use dom0_tools::diskspec::{Access, DiskSpec};
use guest_sdk::events;
use pv_drivers::blkif::{
    Backend, BackendFeatures, BackendInfo, BlkBackRing, Disk, DiskError, FrontendInfo,
};
use xen_abi::io::blkif::{VDISK_CDROM, VDISK_READONLY};

/// A disk's event channel fired.
pub static BLK_EVENT: AtomicBool = AtomicBool::new(false);

fn on_event(_port: u32) {
    BLK_EVENT.store(true, Ordering::Release);
}

/// XenBus states (`xen/io/xenbus.h`).
const INITIALISING: u32 = 1;
const INIT_WAIT: u32 = 2;
const INITIALISED: u32 = 3;
const CONNECTED: u32 = 4;
const CLOSING: u32 = 5;
const CLOSED: u32 = 6;

/// The segments an indirect request may carry (Linux's blkback offers 256).
const MAX_INDIRECT_SEGMENTS: u32 = 256;

/// Bytes of written data an image may hold in dom0's heap (its overlay): beyond that
/// writes fail with `BLKIF_RSP_ERROR` rather than exhaust dom0's memory.
const OVERLAY_LIMIT: usize = 32 << 20;

/// An image from dom0's ramdisk: the file's bytes stay where the ramdisk has them (read
/// only), and what guests write goes to a copy-on-write overlay of 4 KiB chunks in
/// dom0's heap, kept for dom0's lifetime so the next guest of the image sees it.
struct ImageData {
    base: &'static [u8],
    overlay: BTreeMap<u64, Box<[u8; 4096]>>,
}

impl ImageData {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let end = offset.checked_add(buf.len() as u64).ok_or(DiskError::Io)?;
        if end > self.base.len() as u64 {
            return Err(DiskError::Io);
        }
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let (chunk, off) = (pos / 4096, (pos % 4096) as usize);
            let n = (4096 - off).min(buf.len() - done);
            let dst = buf.get_mut(done..done + n).ok_or(DiskError::Io)?;
            match self.overlay.get(&chunk) {
                Some(c) => dst.copy_from_slice(c.get(off..off + n).ok_or(DiskError::Io)?),
                None => {
                    let p = pos as usize;
                    dst.copy_from_slice(self.base.get(p..p + n).ok_or(DiskError::Io)?)
                }
            }
            done += n;
        }
        Ok(())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        let end = offset.checked_add(data.len() as u64).ok_or(DiskError::Io)?;
        if end > self.base.len() as u64 {
            return Err(DiskError::Io);
        }
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let (chunk, off) = (pos / 4096, (pos % 4096) as usize);
            let n = (4096 - off).min(data.len() - done);
            if !self.overlay.contains_key(&chunk) {
                if (self.overlay.len() + 1) * 4096 > OVERLAY_LIMIT {
                    return Err(DiskError::Io);
                }
                let mut c = Box::new([0u8; 4096]);
                let start = (chunk * 4096) as usize;
                let have = self.base.len().saturating_sub(start).min(4096);
                if let (Some(dst), Some(src)) =
                    (c.get_mut(..have), self.base.get(start..start + have))
                {
                    dst.copy_from_slice(src);
                }
                self.overlay.insert(chunk, c);
            }
            let c = self.overlay.get_mut(&chunk).ok_or(DiskError::Io)?;
            let src = data.get(done..done + n).ok_or(DiskError::Io)?;
            c.get_mut(off..off + n)
                .ok_or(DiskError::Io)?
                .copy_from_slice(src);
            done += n;
        }
        Ok(())
    }
}

/// An image shared by the disks that use it.
type Image = Rc<RefCell<ImageData>>;

/// What a guest's disk is backed by.
enum Backing {
    /// An image from dom0's ramdisk.
    Image(Image),
    /// One of dom0's own disks (`target=/dev/vdX`): QEMU's virtio-blk.
    Phys(Rc<RefCell<crate::disk::Disk>>),
}

/// A guest's disk as blkback's core sees it.
struct VDisk {
    backing: Backing,
    read_only: bool,
}

impl Disk for VDisk {
    fn sectors(&self) -> u64 {
        match &self.backing {
            Backing::Image(i) => i.borrow().base.len() as u64 / 512,
            Backing::Phys(d) => d.borrow().sectors(),
        }
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        match &self.backing {
            Backing::Image(i) => i.borrow().read(offset, buf),
            Backing::Phys(d) => {
                let mut d = d.try_borrow_mut().map_err(|_| DiskError::Io)?;
                d.read_at(offset, buf).map_err(|_| DiskError::Io)
            }
        }
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        if self.read_only {
            return Err(DiskError::Io);
        }
        match &self.backing {
            Backing::Image(i) => i.borrow_mut().write(offset, data),
            Backing::Phys(d) => {
                let mut d = d.try_borrow_mut().map_err(|_| DiskError::Io)?;
                d.write_at(offset, data).map_err(|_| DiskError::Io)
            }
        }
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        match &self.backing {
            // dom0's memory is the medium: a completed write is as durable as it gets.
            Backing::Image(_) => Ok(()),
            // The device's write cache reaches the medium (the host's file).
            Backing::Phys(d) => {
                let mut d = d.try_borrow_mut().map_err(|_| DiskError::Io)?;
                d.flush_all().map_err(|_| DiskError::Io)
            }
        }
    }
}

/// A connected ring.
struct Conn {
    ring: BlkBackRing<RingPage>,
    port: u32,
    /// Keeps the ring mapped; dropped (unmapped) after `ring`.
    slot: Slot,
}

/// One virtual disk of one domain.
struct Vbd {
    domid: u16,
    vdev: String,
    be: String,
    fe: String,
    disk: VDisk,
    backend: Backend,
    conn: Option<Conn>,
    state: u32,
    /// `xl block-detach` asked for it to go once the guest has closed it.
    detaching: bool,
}

/// Every virtual disk dom0 serves.
pub struct Blkback {
    images: BTreeMap<String, Image>,
    vbds: Vec<Vbd>,
    grants: Option<CopyGrants>,
}

impl Blkback {
    pub fn new() -> Blkback {
        Blkback {
            images: BTreeMap::new(),
            vbds: Vec::new(),
            grants: CopyGrants::new(),
        }
    }

    /// The image at `path` in dom0's memory (read from the ramdisk the first time).
    fn image(&mut self, path: &str, file: impl FnOnce() -> Option<&'static [u8]>) -> Option<Image> {
        if let Some(i) = self.images.get(path) {
            return Some(i.clone());
        }
        let base = file()?;
        let img = Rc::new(RefCell::new(ImageData {
            base,
            overlay: BTreeMap::new(),
        }));
        self.images.insert(path.to_string(), img.clone());
        Some(img)
    }

    /// Set up disk `spec` for domain `domid` (being built, not yet running): the image,
    /// the frontend and backend directories, the backend's announcement (InitWait).
    pub fn add(
        &mut self,
        xs: &mut Xenstored,
        domid: u16,
        spec: &DiskSpec,
        phys: Option<Rc<RefCell<crate::disk::Disk>>>,
        file: impl FnOnce() -> Option<&'static [u8]>,
    ) -> Result<(), String> {
        let backing = match phys {
            Some(d) => {
                // One guest at a time may write a physical disk (libxl's rule).
                let shared = self.vbds.iter().any(|v| match &v.disk.backing {
                    Backing::Phys(o) => Rc::ptr_eq(o, &d),
                    Backing::Image(_) => false,
                });
                if shared && spec.access == Access::ReadWrite {
                    return Err(format!("{} is already in use", spec.target));
                }
                Backing::Phys(d)
            }
            None => Backing::Image(
                self.image(&spec.target, file)
                    .ok_or_else(|| format!("{}: No such file or directory", spec.target))?,
            ),
        };
        let devid = spec.devid();
        let read_only = spec.access == Access::ReadOnly;
        let fe = format!("/local/domain/{domid}/device/vbd/{devid}");
        let be = format!("/local/domain/0/backend/vbd/{domid}/{devid}");
        let e = |r: Result<(), String>, what: &str| r.map_err(|err| format!("{what}: {err}"));
        let guest = [format!("n{domid}"), String::from("r0")];
        let dom0 = [String::from("n0"), format!("r{domid}")];
        let guest: Vec<&str> = guest.iter().map(String::as_str).collect();
        let dom0: Vec<&str> = dom0.iter().map(String::as_str).collect();
        e(xs.mkdir(&fe), &fe)?;
        e(xs.set_perms(&fe, &guest), &fe)?;
        e(xs.mkdir(&be), &be)?;
        e(xs.set_perms(&be, &dom0), &be)?;
        let fe_keys = [
            ("backend", be.clone()),
            ("backend-id", String::from("0")),
            ("virtual-device", devid.to_string()),
            (
                "device-type",
                String::from(if spec.cdrom { "cdrom" } else { "disk" }),
            ),
            ("state", INITIALISING.to_string()),
        ];
        for (k, v) in fe_keys {
            let p = format!("{fe}/{k}");
            e(xs.write(&p, v.as_bytes()), &p)?;
        }
        let features = BackendFeatures {
            flush_cache: true,
            max_indirect_segments: MAX_INDIRECT_SEGMENTS,
            ..Default::default()
        };
        let disk = VDisk { backing, read_only };
        if disk.sectors() == 0 {
            return Err(format!("{}: smaller than one sector", spec.target));
        }
        let mut info = 0;
        if read_only {
            info |= VDISK_READONLY;
        }
        if spec.cdrom {
            info |= VDISK_CDROM;
        }
        let announce = BackendInfo {
            sectors: disk.sectors(),
            info,
            feature_flush_cache: features.flush_cache,
            max_indirect_segments: features.max_indirect_segments,
            ..Default::default()
        };
        let mut be_keys: Vec<(String, String)> = alloc::vec![
            ("frontend".into(), fe.clone()),
            ("frontend-id".into(), domid.to_string()),
            ("online".into(), "1".into()),
            ("removable".into(), "0".into()),
            ("bootable".into(), "1".into()),
            ("dev".into(), spec.vdev.clone()),
            ("type".into(), "phy".into()),
            (
                "mode".into(),
                String::from(if read_only { "r" } else { "w" })
            ),
            (
                "device-type".into(),
                String::from(if spec.cdrom { "cdrom" } else { "disk" })
            ),
            ("params".into(), spec.target.clone()),
        ];
        be_keys.extend(
            announce
                .to_xenstore()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v)),
        );
        be_keys.push(("state".into(), INIT_WAIT.to_string()));
        for (k, v) in be_keys {
            let p = format!("{be}/{k}");
            e(xs.write(&p, v.as_bytes()), &p)?;
        }
        self.vbds.push(Vbd {
            domid,
            vdev: spec.vdev.clone(),
            be,
            fe,
            disk,
            backend: Backend::new(features, domid),
            conn: None,
            state: INIT_WAIT,
            detaching: false,
        });
        Ok(())
    }

    /// Whether domain `domid` already has a disk `vdev` or of the same device number.
    pub fn has(&self, domid: u16, devid: u32) -> bool {
        self.vbds
            .iter()
            .any(|v| v.domid == domid && v.be.ends_with(&format!("/{devid}")))
    }

    /// `xl block-detach`: ask the guest to let go (backend `Closing`); the disk goes
    /// once the frontend is closed, or at once with `force` or when it never connected.
    /// False if there is no such disk.
    pub fn detach(&mut self, xs: &mut Xenstored, domid: u16, devid: u32, force: bool) -> bool {
        let suffix = format!("/{devid}");
        let Some(v) = self
            .vbds
            .iter_mut()
            .find(|v| v.domid == domid && v.be.ends_with(&suffix))
        else {
            return false;
        };
        v.detaching = true;
        if force || v.conn.is_none() {
            v.conn = None;
            v.state = CLOSED;
        } else {
            set_state(xs, v, CLOSING);
        }
        self.reap(xs);
        true
    }

    /// Remove detached disks that are closed: their nodes on both sides.
    fn reap(&mut self, xs: &mut Xenstored) {
        self.vbds.retain_mut(|v| {
            if !(v.detaching && v.state == CLOSED) {
                return true;
            }
            v.conn = None;
            let _ = xs.rm(&v.be);
            let _ = xs.rm(&v.fe);
            false
        });
    }

    /// Follow the frontends' states and serve every connected ring.
    pub fn poll(&mut self, xs: &mut Xenstored) {
        let Some(grants) = self.grants.as_mut() else {
            return;
        };
        for v in self.vbds.iter_mut() {
            let fe_state = xs.read_u32(&format!("{}/state", v.fe)).unwrap_or(CLOSED);
            match (v.conn.is_some(), fe_state) {
                (false, INITIALISED | CONNECTED) if v.state == INIT_WAIT => match connect(xs, v) {
                    Ok(c) => {
                        v.conn = Some(c);
                        set_state(xs, v, CONNECTED);
                    }
                    Err(e) => {
                        guest_sdk::println!(
                            "blkback: domain {} {}: cannot connect: {e}",
                            v.domid,
                            v.vdev
                        );
                        let _ = xs.write(&format!("{}/error", v.be), e.as_bytes());
                        set_state(xs, v, CLOSED);
                    }
                },
                (true, CLOSING) => {
                    v.conn = None;
                    set_state(xs, v, CLOSING);
                }
                (true, CLOSED) => {
                    v.conn = None;
                    set_state(xs, v, CLOSED);
                }
                (false, CLOSED) if v.detaching || v.state == CLOSING => set_state(xs, v, CLOSED),
                _ => {}
            }
            let Some(c) = v.conn.as_mut() else {
                continue;
            };
            // Bounded per pass: one busy guest cannot starve the others or the shell.
            match v.backend.service(&mut c.ring, grants, &mut v.disk, 64) {
                Ok(s) => {
                    if s.notify {
                        let _ = events::send(c.port);
                    }
                    if s.more {
                        BLK_EVENT.store(true, Ordering::Release);
                    }
                }
                Err(e) => {
                    guest_sdk::println!(
                        "blkback: domain {} {}: broken ring ({e:?}), disconnected",
                        v.domid,
                        v.vdev
                    );
                    v.conn = None;
                    set_state(xs, v, CLOSED);
                }
            }
        }
        self.reap(xs);
    }

    /// Domain `domid` is gone: drop its disks and their backend directories.
    pub fn remove_domain(&mut self, xs: &mut Xenstored, domid: u16) {
        self.vbds.retain_mut(|v| {
            if v.domid != domid {
                return true;
            }
            v.conn = None;
            let _ = xs.rm(&v.be);
            false
        });
        let _ = xs.rm(&format!("/local/domain/0/backend/vbd/{domid}"));
    }

    /// `xl block-list DOMAIN`: xl's columns, one line per disk (`Vdev BE handle state
    /// evt-ch ring-ref BE-path`; -1 where the frontend has not said yet).
    pub fn list(&self, xs: &mut Xenstored, domid: u16) -> String {
        let mut o = String::new();
        for v in self.vbds.iter().filter(|v| v.domid == domid) {
            let devid = v.be.rsplit('/').next().unwrap_or("0");
            let fe_num = |xs: &mut Xenstored, k: &str| -> i64 {
                xs.read_u32(&format!("{}/{k}", v.fe)).map_or(-1, i64::from)
            };
            let evtch = fe_num(xs, "event-channel");
            let rref = fe_num(xs, "ring-ref");
            o.push_str(&format!(
                "{:<5} {:<3} {:<6} {:<5} {:<6} {:<8} {:<30}\n",
                devid, 0, domid, v.state, evtch, rref, v.be
            ));
        }
        o
    }
}

fn set_state(xs: &mut Xenstored, v: &mut Vbd, state: u32) {
    v.state = state;
    let _ = xs.write(&format!("{}/state", v.be), state.to_string().as_bytes());
}

/// Map the frontend's ring and bind its channel.
fn connect(xs: &mut Xenstored, v: &mut Vbd) -> Result<Conn, String> {
    let fe = v.fe.clone();
    let info = FrontendInfo::from_xenstore(|k| xs.read_string(&format!("{fe}/{k}")))
        .map_err(|e| format!("frontend keys: {e:?}"))?;
    if !info.protocol.is_native() {
        return Err(String::from("unsupported protocol"));
    }
    let mut slot = Slot::new().map_err(|e| format!("no slot: {e:?}"))?;
    let va = slot
        .map_grant(v.domid, info.ring_ref, false)
        .map_err(|e| format!("mapping ring-ref {}: {e:?}", info.ring_ref))?;
    let ring =
        BlkBackRing::attach(RingPage(va as *mut u8), 0).map_err(|e| format!("ring: {e:?}"))?;
    let port = events::bind_interdomain(v.domid, info.event_channel)
        .map_err(|e| format!("binding event-channel {}: {e:?}", info.event_channel))?;
    let _ = events::set_handler(port, on_event);
    let _ = events::unmask(port);
    Ok(Conn { ring, port, slot })
}

impl Drop for Conn {
    fn drop(&mut self) {
        let _ = events::close(self.port);
        // The ring's page is unmapped when `slot` drops, after this.
        let _ = &self.slot;
    }
}
