//! A real nginx (Debian package `nginx`) in front of relay nodes, for tests: a generated config
//! with an `upstream` of the nodes (round-robin) on a free loopback port, its own temporary
//! prefix for logs, pid and temp files, run in the foreground (`daemon off; master_process off;`,
//! so it needs no root and no system paths) and killed when dropped. Without the binary, tests
//! FAIL with a message saying what to install.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary: `NGINX_BIN`, else `nginx` on PATH, else Debian's `/usr/sbin/nginx`.
fn binary() -> String {
    if let Ok(bin) = std::env::var("NGINX_BIN") {
        return bin;
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join("nginx").is_file()))
        .unwrap_or(false);
    if on_path {
        "nginx".to_owned()
    } else {
        "/usr/sbin/nginx".to_owned()
    }
}

/// A running nginx; killed on drop.
pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
    _prefix: tempfile::TempDir,
}

impl Nginx {
    /// Proxies every request round-robin to `upstreams`, appending the peer to
    /// `X-Forwarded-For` as a production config would.
    pub fn start(upstreams: &[SocketAddr]) -> Self {
        let prefix = tempfile::tempdir().expect("temporary nginx prefix");
        for _ in 0..20 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free loopback port");
            let conf = prefix.path().join("nginx.conf");
            std::fs::write(&conf, config(port, upstreams, prefix.path()))
                .expect("write nginx.conf");
            let mut child = match Command::new(binary())
                .arg("-p")
                .arg(prefix.path())
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(child) => child,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                    "nginx is not installed: this test needs Debian's nginx package \
                     (apt-get install nginx; .ci/run installs it). Set NGINX_BIN to use another \
                     binary."
                ),
                Err(e) => panic!("cannot run nginx: {e}"),
            };
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut up = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // most likely the port was taken meanwhile: try another
                }
                if TcpStream::connect(addr).is_ok() {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if up {
                return Self {
                    child,
                    addr,
                    _prefix: prefix,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(prefix.path().join("error.log")).unwrap_or_default();
        panic!("nginx did not start; error.log:\n{log}");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(port: u16, upstreams: &[SocketAddr], prefix: &std::path::Path) -> String {
    let p = prefix.display();
    let servers: String = upstreams
        .iter()
        .map(|a| format!("        server {a};\n"))
        .collect();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{
    worker_connections 256;
}}
http {{
    access_log off;
    client_body_temp_path {p}/client_body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    upstream relay {{
{servers}    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://relay;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            # Long-polls wait up to 60 s.
            proxy_read_timeout 90s;
            proxy_buffering off;
        }}
    }}
}}
"#
    )
}
