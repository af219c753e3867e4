//! A redis-server of the test's own for cluster mode, on a free loopback port (never a
//! system one).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A redis-server of the test's own, on a free loopback port, with nothing saved to disk.
pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Redis {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let dir =
            std::env::temp_dir().join(format!("free4chat-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Redis {
            port,
            dir,
            child: None,
        };
        redis.spawn();
        redis
    }

    pub fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test installs the redis-server package)");
        self.child = Some(child);
        // Ready once it answers.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A node of a cluster on `redis`: a server of the tests' usual configuration, whose draining
/// gives up after 5 s.
pub async fn node(redis: &Redis) -> free4chat::Server {
    let url = redis.url();
    super::server_with(super::config_with(|c| {
        c.cluster.redis = Some(url);
        c.cluster.drain_timeout = Duration::from_secs(5);
    }))
    .await
}
