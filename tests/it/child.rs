//! Helpers for tests that drive the binary as a child process by hand: a watchdog that kills a
//! stuck child, peak memory from `wait4`, and stderr collected on a thread.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Kills the child with SIGKILL unless it is disarmed within the timeout, so a hung run fails
/// its test instead of hanging `cargo test`.
pub struct Watchdog {
    disarm: mpsc::Sender<()>,
    thread: Option<JoinHandle<bool>>,
}

impl Watchdog {
    /// Starts watching the process `pid`.
    pub fn new(pid: u32, timeout: Duration) -> Watchdog {
        let (disarm, disarmed) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if disarmed.recv_timeout(timeout).is_ok() {
                return false;
            }
            // SAFETY: `kill` has no memory effects. The child is not reaped until the test's
            // wait returns, which disarms the watchdog first, so `pid` is still the child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            true
        });
        Watchdog {
            disarm,
            thread: Some(thread),
        }
    }

    /// Stops the watchdog. Returns whether it had killed the child.
    pub fn disarm(mut self) -> bool {
        let _ = self.disarm.send(());
        self.thread
            .take()
            .map(|thread| thread.join().unwrap())
            .unwrap_or(false)
    }
}

/// Waits for `child` and returns its exit status and peak resident memory in KiB, which
/// `std::process` does not report. Kills the child after `timeout`.
///
/// The peak is the largest `VmHWM` of `/proc/PID/status` seen while polling every 5 ms.
/// `wait4`'s `ru_maxrss` cannot be used: the child is spawned with vfork semantics, and at exec
/// Linux keeps the high-water mark of the memory it shared with the test process, so the figure
/// would include whatever the other tests of this process hold.
pub fn wait_with_peak_memory(child: &Child, timeout: Duration) -> (ExitStatus, i64) {
    use std::os::unix::process::ExitStatusExt;

    let pid = child.id();
    let watchdog = Watchdog::new(pid, timeout);
    let mut status = 0;
    let mut peak_kib = 0;
    let waited = loop {
        if let Some(kib) = high_water_kib(pid) {
            peak_kib = peak_kib.max(kib);
        }
        // SAFETY: `pid` is this test's own child, not yet waited for, and `status` is valid
        // for the call. Reaping it here means `child.wait()` must not be called afterwards.
        let waited = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
        if waited != 0 {
            break waited;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let killed = watchdog.disarm();
    assert_eq!(
        waited,
        pid as libc::pid_t,
        "waitpid: {}",
        std::io::Error::last_os_error()
    );
    assert!(
        !killed,
        "the child ran longer than {timeout:?} and was killed"
    );
    (ExitStatus::from_raw(status), peak_kib)
}

/// Returns the `VmHWM` line of `/proc/PID/status` in KiB, or `None` once the process is gone.
fn high_water_kib(pid: u32) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Waits for `child` to exit, killing it after `timeout`.
pub fn wait_or_kill(child: &mut Child, timeout: Duration) -> ExitStatus {
    let watchdog = Watchdog::new(child.id(), timeout);
    let status = child.wait().unwrap();
    assert!(
        !watchdog.disarm(),
        "the child ran longer than {timeout:?} and was killed"
    );
    status
}

/// Reads the child's stderr to the end on a thread, so a full pipe never blocks the child.
pub fn collect_stderr(child: &mut Child) -> JoinHandle<String> {
    let mut stderr = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    })
}

/// Runs `command` to the end like `Command::output`, killing it after `timeout`.
pub fn output_within(command: &mut Command, timeout: Duration) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the vt-enrich binary starts");
    let watchdog = Watchdog::new(child.id(), timeout);
    let output = child
        .wait_with_output()
        .expect("the child's output is readable");
    assert!(
        !watchdog.disarm(),
        "the child ran longer than {timeout:?} and was killed"
    );
    output
}
