//! Keys the operator presses on the console: the provisioning-mode window.
//!
//! PID 1 has no controlling terminal (the console is opened `O_NOCTTY`), so Ctrl-C never becomes
//! a signal: with the line discipline's signal keys off it arrives as the byte 0x03. The window
//! switches the terminal to non-canonical input without echo or signal keys, waits up to its
//! length for a Ctrl-C, and puts the terminal settings back before it returns.

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fd::AsFd;
use rustix::termios::{LocalModes, OptionalActions, SpecialCodeIndex, tcgetattr, tcsetattr};
use std::io;
use std::time::{Duration, Instant};

/// The byte a terminal sends for Ctrl-C.
pub const CTRL_C: u8 = 0x03;

/// How a window ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Ctrl-C arrived within the window, after this long.
    Interrupted(Duration),
    /// The window passed without a Ctrl-C (other keys are ignored).
    Passed,
    /// The input is not a terminal (a file, `/dev/null`): nobody can press a key.
    NoTerminal,
    /// The terminal reported end of input (hung up) before the window ended.
    Closed,
}

/// Wait on standard input for Ctrl-C, for at most `window`.
pub fn wait_for_ctrl_c(window: Duration) -> io::Result<Window> {
    wait_for_ctrl_c_on(rustix::stdio::stdin(), window)
}

/// [`wait_for_ctrl_c`] on another terminal (tests use a pseudo-terminal).
pub fn wait_for_ctrl_c_on<Fd: AsFd>(fd: Fd, window: Duration) -> io::Result<Window> {
    let fd = fd.as_fd();
    let saved = match tcgetattr(fd) {
        Ok(t) => t,
        Err(rustix::io::Errno::NOTTY) => return Ok(Window::NoTerminal),
        Err(e) => return Err(e.into()),
    };
    let mut raw = saved.clone();
    raw.local_modes
        .remove(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG);
    raw.special_codes[SpecialCodeIndex::VMIN] = 0;
    raw.special_codes[SpecialCodeIndex::VTIME] = 0;
    tcsetattr(fd, OptionalActions::Now, &raw)?;
    let outcome = watch(fd, window);
    // Put the terminal back even when watching failed; report the first error.
    let restored = tcsetattr(fd, OptionalActions::Now, &saved);
    let outcome = outcome?;
    restored?;
    Ok(outcome)
}

fn watch(fd: rustix::fd::BorrowedFd<'_>, window: Duration) -> io::Result<Window> {
    let start = Instant::now();
    let mut buf = [0u8; 64];
    loop {
        let left = window.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(Window::Passed);
        }
        let timeout = Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => return Ok(Window::Passed),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let revents = fds[0].revents();
        if !revents.contains(PollFlags::IN) {
            if revents.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
                return Ok(Window::Closed);
            }
            continue;
        }
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return Ok(Window::Closed),
            Ok(n) if buf[..n].contains(&CTRL_C) => {
                return Ok(Window::Interrupted(start.elapsed()));
            }
            Ok(_) | Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rustix::fs::{Mode, OFlags, open};
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

    /// A pseudo-terminal pair: (controller, terminal).
    fn pty() -> (rustix::fd::OwnedFd, rustix::fd::OwnedFd) {
        let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&controller).unwrap();
        unlockpt(&controller).unwrap();
        let name = ptsname(&controller, Vec::new()).unwrap();
        let terminal = open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY,
            Mode::empty(),
        )
        .unwrap();
        (controller, terminal)
    }

    /// Type `keys` on the controller side after `after`, from another thread.
    fn type_later(controller: rustix::fd::OwnedFd, after: Duration, keys: &'static [u8]) {
        std::thread::spawn(move || {
            std::thread::sleep(after);
            rustix::io::write(&controller, keys).unwrap();
            // Keep the controller open until the window is over, so no hang-up is seen.
            std::thread::sleep(Duration::from_secs(3));
        });
    }

    #[test]
    fn ctrl_c_in_the_window_interrupts_it() {
        let (controller, terminal) = pty();
        let before = tcgetattr(&terminal).unwrap();
        type_later(controller, Duration::from_millis(150), b"ab\x03");
        let got = wait_for_ctrl_c_on(&terminal, Duration::from_secs(10)).unwrap();
        assert!(
            matches!(got, Window::Interrupted(d) if d < Duration::from_secs(5)),
            "{got:?}"
        );
        // The terminal's settings are back: canonical mode, echo and signal keys.
        let after = tcgetattr(&terminal).unwrap();
        assert_eq!(after.local_modes, before.local_modes);
        assert!(after.local_modes.contains(LocalModes::ISIG));
    }

    #[test]
    fn other_keys_do_not_interrupt_and_the_window_ends() {
        let (controller, terminal) = pty();
        type_later(controller, Duration::from_millis(50), b"y\r\n");
        let start = Instant::now();
        let got = wait_for_ctrl_c_on(&terminal, Duration::from_millis(400)).unwrap();
        assert_eq!(got, Window::Passed);
        assert!(start.elapsed() >= Duration::from_millis(400));
    }

    #[test]
    fn a_pipe_is_no_terminal() {
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert_eq!(
            wait_for_ctrl_c_on(&r, Duration::from_secs(5)).unwrap(),
            Window::NoTerminal
        );
    }
}
