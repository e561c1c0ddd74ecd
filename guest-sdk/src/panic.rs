//! The SDK's panic handler: print the message and location, crash the domain.

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    crate::println!("guest panic: {}", info);
    crate::sched::crash()
}
