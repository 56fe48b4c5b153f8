//! A `nats-server` child process for tests, examples and benchmarks: started on a free
//! loopback port with JetStream in a temporary directory, stopped (and its directory removed)
//! when dropped, and able to be killed and started again on the same port with the same data,
//! which the JetStream restart test needs.
//!
//! It runs the `nats-server` that `scripts/nats-server.sh install` put on the machine (Debian's
//! package); `NATS_SERVER_BIN` names another binary. It installs nothing itself.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a start may take before it is an error.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running (or stopped) `nats-server` child.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

/// The `nats-server` binary: `NATS_SERVER_BIN`, else `nats-server` on `PATH`, else Debian's
/// `/usr/sbin/nats-server` (not on every user's `PATH`).
pub fn binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        return Some(PathBuf::from(bin));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("nats-server"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let sbin = PathBuf::from("/usr/sbin/nats-server");
        sbin.is_file().then_some(sbin)
    })
}

/// A new, empty directory under the system's temporary directory.
fn temp_dir() -> io::Result<PathBuf> {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "tracebus-nats-test.{}.{}.{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

impl NatsServer {
    /// Starts a server on a free loopback port, JetStream on.
    pub fn start() -> io::Result<NatsServer> {
        let bin = binary().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no nats-server binary (install it with scripts/nats-server.sh install)",
            )
        })?;
        let mut server = NatsServer {
            child: None,
            port: 0,
            dir: temp_dir()?,
            bin,
        };
        server.spawn()?;
        Ok(server)
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port it listens on (the same after [`NatsServer::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the process: on a port the server picks the first time, on the same port after.
    fn spawn(&mut self) -> io::Result<()> {
        let ports_dir = self.dir.join("ports");
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir)?;
        let port = if self.port == 0 {
            "-1".to_owned()
        } else {
            self.port.to_string()
        };
        let mut child = Command::new(&self.bin)
            .args(["-a", "127.0.0.1", "-p", &port, "-js", "-sd"])
            .arg(self.dir.join("js"))
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let ports = ports_dir.join(format!("nats-server_{}.ports", child.id()));
        let deadline = Instant::now() + START_TIMEOUT;
        let port = loop {
            if let Some(port) = read_port(&ports) {
                break port;
            }
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "nats-server exited at start ({status}); log: {}",
                    self.dir.join("server.log").display()
                )));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nats-server did not start",
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.port = port;
        self.child = Some(child);
        Ok(())
    }

    /// Kills the process at once (SIGKILL): no goodbye to clients, nothing flushed by it.
    pub fn kill(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts it again on the same port with the same JetStream data.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill()?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                // The port may take a moment to be free again.
                Err(e) if Instant::now() < deadline => {
                    eprintln!("nats-server restart: {e}; trying again");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Where its data and log are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The port in a ports file, once the server wrote it.
fn read_port(ports: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(ports).ok()?;
    let at = text.find("nats://")? + "nats://".len();
    let rest = &text[at..];
    let colon = rest.find(':')?;
    let digits: String = rest[colon + 1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ports_file() {
        let dir = temp_dir().unwrap();
        let f = dir.join("p.ports");
        assert_eq!(read_port(&f), None);
        std::fs::write(&f, r#"{"nats":["nats://127.0.0.1:33707"]}"#).unwrap();
        assert_eq!(read_port(&f), Some(33707));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
