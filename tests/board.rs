//! `runbook board` and `run --board`: the real binary serving a real run,
//! read over loopback by raw HTTP, by 200 SSE clients and by headless
//! Chromium over the DevTools protocol.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{BIN, Test};

/// A board process, its address (`127.0.0.1:PORT`) and what it printed
/// before the address; killed on drop.
struct Served {
    child: Child,
    addr: String,
    said: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `runbook ARGS` in `dir` and reads the board's address from the
/// line it prints on stderr (`--listen 127.0.0.1:0`: any free port).
fn serve(dir: &Path, args: &[&str]) -> Served {
    let mut command = Command::new(BIN);
    command.args(args);
    served(dir, command)
}

/// `command` started in `dir`, serving a board.
fn served(dir: &Path, mut command: Command) -> Served {
    let mut child = command
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("RUNBOOK_STATE_DIR")
        .env_remove("RUNBOOK_BOARD_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    let addr = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the board printed no address: {said}"
        );
        said.push_str(&line);
        if let Some(rest) = line.split("http://").nth(1) {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    // Keep reading stderr so that the process never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    Served { child, addr, said }
}

/// One request; the status code and the body (headers included).
fn request(addr: &str, method: &str, path: &str, headers: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    // The `Host` of the address, unless the test gives its own.
    let host = if headers.to_lowercase().contains("host:") {
        String::new()
    } else {
        format!("Host: {addr}\r\n")
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\n{host}Connection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let code = status.split(' ').nth(1).unwrap().parse().unwrap();
    let mut rest = String::new();
    if path.starts_with("/events") && code == 200 {
        return (code, rest);
    }
    // Chromium's endpoint keeps the connection: read what Content-Length says.
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        rest.push_str(&line);
        if let Some(n) = line.to_lowercase().strip_prefix("content-length:") {
            length = n.trim().parse::<usize>().ok();
        }
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    match length {
        Some(n) if method != "HEAD" => {
            let mut body = vec![0; n];
            reader.read_exact(&mut body).unwrap();
            rest.push_str(&String::from_utf8_lossy(&body));
        }
        Some(_) => {}
        None => {
            reader.read_to_string(&mut rest).unwrap();
        }
    }
    (code, rest)
}

fn get(addr: &str, path: &str) -> String {
    let (code, body) = request(addr, "GET", path, "");
    assert_eq!(code, 200, "GET {path}: {body}");
    body
}

fn api(addr: &str) -> serde_json::Value {
    let body = get(addr, "/api/run");
    serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap()
}

fn step_status(api: &serde_json::Value, step: &str) -> String {
    api["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == step)
        .map(|s| s["outcome"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Polls `until` (a hang guard, not a timing assertion).
fn eventually(what: &str, mut until: impl FnMut() -> bool) {
    let start = Instant::now();
    while !until() {
        assert!(start.elapsed() < Duration::from_secs(90), "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A run whose `gate` waits for the file `go`, and whose `hold` waits for
/// `end`, so that the board can be read before and after `gate` moves.
const GATED: &str = "
    version: 1
    name: gated
    phases: [{id: restore, title: Restore, rto: 1h}]
    steps:
      - {id: gate, title: Gate, phase: restore, run: 'until [ -e go ]; do sleep 0.05; done', estimate: 1m}
      - {id: after, depends_on: [gate], phase: restore, run: 'true'}
      - {id: hold, depends_on: [after], run: 'until [ -e end ]; do sleep 0.05; done'}
    services:
      - {id: records, title: Patient records, audience: clinical, ready_when: [after]}
    ";

const RUN_BOARD: &[&str] = &[
    "run",
    "runbook.yaml",
    "--state-dir",
    "state",
    "--board",
    "127.0.0.1:0",
];

/// A finished run with hostile values: a step title that is markup, a
/// failure whose stderr is markup, and a note with quotes.
fn hostile_run() -> Test {
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: hostile
            steps:
              - {id: t, title: '<script>alert(1)</script>', run: 'true'}
              - {id: bad, run: 'echo \"<img src=x onerror=alert(2)>\" >&2; exit 1'}
            ",
        )
        .args(["run", "runbook.yaml", "--state-dir", "state", "-q"])
        .status(1)
        .run();
    let id = std::fs::read_dir(t.path().join("state/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let out = Command::new(BIN)
        .current_dir(t.path())
        .args(["mark", &id, "bad", "done", "--state-dir", "state"])
        .args([
            "--operator",
            "o'neil",
            "--note",
            "he said \"ok\" & <i>fine</i>",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t
}

#[test]
fn the_board_escapes_every_value_and_loads_nothing_from_the_network() {
    let t = hostile_run();
    let board = serve(
        t.path(),
        &["board", "--state-dir", "state", "--listen", "127.0.0.1:0"],
    );
    let room = get(&board.addr, "/");
    let status = get(&board.addr, "/status");
    for page in [&room, &status] {
        let lower = page.to_lowercase();
        let body = lower.split("\r\n\r\n").nth(1).unwrap();
        assert!(
            !body.contains("http:") && !body.contains("https:"),
            "{page}"
        );
        assert!(
            !body.contains("<link") && !body.contains("<script src"),
            "{page}"
        );
        assert_eq!(
            body.matches("<script").count(),
            1,
            "only the page's own script: {page}"
        );
        assert!(
            lower.contains("content-security-policy: default-src 'none'"),
            "{page}"
        );
    }
    assert!(
        room.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{room}"
    );
    assert!(!room.contains("<script>alert"), "{room}");
    assert!(
        room.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "{room}"
    );
    assert!(!room.contains("<img"), "{room}");
    assert!(
        room.contains("he said &quot;ok&quot; &amp; &lt;i&gt;fine&lt;/i&gt;"),
        "{room}"
    );
    assert!(room.contains("o&#39;neil"), "{room}");
    // The JSON has the values as they are.
    let api = api(&board.addr);
    assert_eq!(api["steps"][0]["title"], "<script>alert(1)</script>");
    assert_eq!(api["marks"][0]["note"], "he said \"ok\" & <i>fine</i>");
    assert_eq!(api["marks"][0]["operator"], "o'neil");
}

#[test]
fn with_a_token_every_route_needs_it_and_nothing_but_get_is_allowed() {
    let t = hostile_run();
    let board = serve(
        t.path(),
        &[
            "board",
            "--state-dir",
            "state",
            "--listen",
            "127.0.0.1:0",
            "--token",
            "s3cr&t",
        ],
    );
    for route in ["/", "/status", "/api/run", "/events", "/nowhere"] {
        let (code, _) = request(&board.addr, "GET", route, "");
        assert_eq!(code, 401, "{route} without the token");
        let (code, _) = request(&board.addr, "GET", route, "Authorization: Bearer wrong\r\n");
        assert_eq!(code, 401, "{route} with a wrong token");
        let (code, _) = request(&board.addr, "POST", route, "");
        assert_eq!(code, 401, "{route}: POST without the token");
        let want = if route == "/nowhere" { 404 } else { 200 };
        let (code, _) = request(
            &board.addr,
            "GET",
            route,
            "Authorization: Bearer s3cr&t\r\n",
        );
        assert_eq!(code, want, "{route} with the token in a header");
        let sep = if route.contains('?') { '&' } else { '?' };
        let (code, _) = request(
            &board.addr,
            "GET",
            &format!("{route}{sep}token=s3cr%26t"),
            "",
        );
        assert_eq!(code, want, "{route} with the token in the address");
        if route != "/nowhere" {
            for method in ["POST", "PUT", "DELETE", "PATCH"] {
                let (code, _) = request(
                    &board.addr,
                    method,
                    route,
                    "Authorization: Bearer s3cr&t\r\nContent-Length: 0\r\n",
                );
                assert_eq!(code, 405, "{method} {route}");
            }
        }
    }
    let (code, _) = request(&board.addr, "HEAD", "/?token=s3cr%26t", "");
    assert_eq!(code, 200, "HEAD is a read");
}

#[test]
fn without_a_token_a_post_is_405_too() {
    let t = hostile_run();
    let board = serve(
        t.path(),
        &["board", "--state-dir", "state", "--listen", "127.0.0.1:0"],
    );
    let (code, _) = request(&board.addr, "POST", "/api/run", "Content-Length: 0\r\n");
    assert_eq!(code, 405);
}

#[test]
fn the_board_of_an_unknown_run_or_a_bad_address_exits_2() {
    let t = hostile_run();
    let out = Command::new(BIN)
        .current_dir(t.path())
        .args(["board", "nope", "--state-dir", "state"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    let out = Command::new(BIN)
        .current_dir(t.path())
        .args([
            "board",
            "--state-dir",
            "state",
            "--listen",
            "not-an-address",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Not an address of this machine: cannot listen there.
    let out = Command::new(BIN)
        .current_dir(t.path())
        .args(["board", "--state-dir", "state", "--listen", "192.0.2.1:80"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen on 192.0.2.1:80"));
    // `run --board` on an address in use stops before the run starts.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (_, t) = Test::new()
        .runbook("version: 1\nname: x\nsteps: [{id: a, run: 'touch ran'}]\n")
        .args([
            "run",
            "runbook.yaml",
            "--state-dir",
            "state",
            "--board",
            &addr,
        ])
        .status(2)
        .stderr_contains("cannot listen on")
        .run();
    assert!(!t.path().join("ran").exists());
}

#[test]
fn two_hundred_sse_clients_all_get_every_event_and_the_run_succeeds() {
    let t = Test::new().runbook(GATED);
    std::fs::write(t.path().join("end"), "").unwrap();
    let mut run = serve(t.path(), RUN_BOARD);
    let addr = run.addr.clone();
    eventually("gate runs", || {
        step_status(&api(&addr), "gate") == "running"
    });
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let addr = addr.clone();
            let ready = ready_tx.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
                write!(s, "GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
                let mut ids = Vec::new();
                let mut finished = false;
                for line in BufReader::new(s).lines() {
                    let Ok(line) = line else { break };
                    if line == "event: ready" {
                        ready.send(()).unwrap();
                    }
                    if let Some(id) = line.strip_prefix("id: ") {
                        ids.push(id.parse::<usize>().unwrap());
                    }
                    if line.contains("\"event\":\"run-finished\"") {
                        finished = true;
                    }
                }
                (ids, finished)
            })
        })
        .collect();
    for _ in 0..200 {
        ready_rx.recv_timeout(Duration::from_secs(120)).unwrap();
    }
    std::fs::write(t.path().join("go"), "").unwrap();
    let status = run.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the run succeeds");
    let mut all = Vec::new();
    for c in clients {
        let (ids, finished) = c.join().unwrap();
        assert!(finished, "a client missed run-finished: {ids:?}");
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "a gap: {ids:?}");
        all.push(ids);
    }
    assert!(all.windows(2).all(|w| w[0].last() == w[1].last()));
}

/// A page in headless Chromium, driven over the DevTools protocol.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    port: u16,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn start() -> Self {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "about:blank",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium (Debian's `chromium`): run scripts/test.sh, which installs it");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let port = loop {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "chromium did not start"
            );
            if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
                break rest.split('/').next().unwrap().parse().unwrap();
            }
        };
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Self {
            child,
            _profile: profile,
            port,
        }
    }

    /// Opens `url` in a new tab and connects to it.
    fn open(&self, url: &str) -> Tab {
        let (code, body) = request(
            &format!("127.0.0.1:{}", self.port),
            "PUT",
            &format!("/json/new?{url}"),
            "Content-Length: 0\r\n",
        );
        assert_eq!(code, 200, "{body}");
        let json: serde_json::Value =
            serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        let ws = json["webSocketDebuggerUrl"].as_str().unwrap();
        let (socket, _) = tungstenite::connect(ws).unwrap();
        Tab { socket, id: 0 }
    }
}

struct Tab {
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    id: u64,
}

impl Tab {
    /// The value of a JavaScript expression on the page.
    fn eval(&mut self, expression: &str) -> serde_json::Value {
        self.id += 1;
        let call = serde_json::json!({
            "id": self.id,
            "method": "Runtime.evaluate",
            "params": {"expression": expression, "returnByValue": true},
        });
        self.socket
            .send(tungstenite::Message::text(call.to_string()))
            .unwrap();
        loop {
            let message = self.socket.read().unwrap();
            let Ok(text) = message.to_text() else {
                continue;
            };
            let reply: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            if reply["id"] == self.id {
                return reply["result"]["result"]["value"].clone();
            }
        }
    }
}

#[test]
fn chromium_sees_a_step_and_a_service_change_without_a_reload() {
    let t = Test::new().runbook(GATED);
    let run = serve(t.path(), RUN_BOARD);
    let addr = run.addr.clone();
    eventually("gate runs", || {
        step_status(&api(&addr), "gate") == "running"
    });
    let browser = Browser::start();
    let mut room = browser.open(&format!("http://{addr}/"));
    let mut status = browser.open(&format!("http://{addr}/status"));
    let gate = "document.querySelector('[data-step=\"gate\"]')?.dataset.status";
    let after = "document.querySelector('[data-step=\"after\"]')?.dataset.status";
    let records = "document.querySelector('[data-service=\"records\"]')?.className";
    let live = "document.body?.dataset.live";
    eventually("the war room is live", || {
        room.eval(live) == "1" && room.eval(gate) == "running"
    });
    eventually("the status page is live", || {
        status.eval(live) == "1" && status.eval(records) == "being-restored"
    });
    assert_eq!(room.eval(after), "not-run");
    // Anything set now is lost if the page loads again.
    room.eval("window.before = 42");
    status.eval("window.before = 43");
    std::fs::write(t.path().join("go"), "").unwrap();
    eventually("the war room shows `after` done", || {
        room.eval(after) == "ok"
    });
    eventually("the status page shows the service back", || {
        status.eval(records) == "available"
    });
    assert_eq!(room.eval(gate), "ok");
    assert_eq!(room.eval("window.before"), 42, "the page was not reloaded");
    assert_eq!(
        status.eval("window.before"),
        43,
        "the page was not reloaded"
    );
    assert!(room.eval("Number(document.body.dataset.updates)").as_u64() >= Some(1));
    std::fs::write(t.path().join("end"), "").unwrap();
    let mut run = run;
    assert_eq!(run.child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_step_waiting_for_an_operator_shows_with_its_instructions() {
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: waits
            steps:
              - id: power
                title: Confirm power
                manual: 'Call the <b>DC</b> desk, PIN {{ secret.PIN }}'
            ",
        )
        .args(["run", "runbook.yaml", "--state-dir", "state", "-q"])
        .env("RUNBOOK_SECRET_PIN", "4711-pin")
        .status(3)
        .run();
    let board = serve(
        t.path(),
        &["board", "--state-dir", "state", "--listen", "127.0.0.1:0"],
    );
    let api = api(&board.addr);
    assert_eq!(api["waiting"][0]["step"], "power", "{api}");
    let instructions = api["waiting"][0]["instructions"].as_str().unwrap();
    assert!(instructions.contains("<b>DC</b> desk"), "{instructions}");
    let room = get(&board.addr, "/");
    assert!(room.contains("data-waiting=\"power\""), "{room}");
    assert!(
        room.contains("Call the &lt;b&gt;DC&lt;/b&gt; desk"),
        "{room}"
    );
    // Shown as written, never with the secret filled in.
    assert!(!room.contains("4711-pin") && !api.to_string().contains("4711-pin"));
}

/// Every open connection is a file of the process that runs the recovery:
/// clients that open many and never send a request must not leave the
/// run's next step without a file to start its command with.
#[test]
fn idle_connections_to_the_board_cannot_starve_the_run_of_files() {
    let t = Test::new().runbook(
        "
        version: 1
        name: starved
        steps:
          - {id: gate, run: 'until [ -e go ]; do sleep 0.05; done'}
          - {id: after, depends_on: [gate], run: 'echo ok > done'}
        ",
    );
    let mut command = Command::new("sh");
    command.args([
        "-c",
        &format!(
            "ulimit -n 128 && exec {BIN} run runbook.yaml --state-dir state --board 127.0.0.1:0"
        ),
    ]);
    let mut run = served(t.path(), command);
    let mut idle = Vec::new();
    for _ in 0..300 {
        let addr = run.addr.parse().unwrap();
        // Past the board's limit, the kernel's queue fills and connecting
        // waits: enough are open.
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => idle.push(s),
            Err(_) => break,
        }
    }
    assert!(idle.len() > 128, "only {} connections", idle.len());
    std::fs::write(t.path().join("go"), "").unwrap();
    let status = run.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the run succeeds");
    assert!(t.path().join("done").exists());
}

/// A client that sends its request's head a byte at a time, or not at all,
/// is cut off rather than holding its connection for ever.
#[test]
fn a_client_that_never_finishes_its_request_is_cut_off() {
    let t = hostile_run();
    let board = serve(
        t.path(),
        &["board", "--state-dir", "state", "--listen", "127.0.0.1:0"],
    );
    let silent = TcpStream::connect(&board.addr).unwrap();
    let dripping = TcpStream::connect(&board.addr).unwrap();
    let mut drip = dripping.try_clone().unwrap();
    std::thread::spawn(move || {
        for b in b"GET / HTTP/1.1\r\nX: "
            .iter()
            .chain(std::iter::repeat(&b'a'))
        {
            if drip.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    for mut s in [silent, dripping.try_clone().unwrap()] {
        s.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)
            .expect("the board closes the connection");
    }
    let _ = dripping.shutdown(std::net::Shutdown::Both);
}

#[test]
fn an_empty_token_is_refused_before_anything_starts() {
    let t = hostile_run();
    for (args, env) in [
        (
            vec![
                "board",
                "--state-dir",
                "state",
                "--listen",
                "127.0.0.1:0",
                "--token",
                "",
            ],
            None,
        ),
        (
            vec!["board", "--state-dir", "state", "--listen", "127.0.0.1:0"],
            Some(""),
        ),
    ] {
        let mut command = Command::new(BIN);
        command.current_dir(t.path()).args(&args);
        if let Some(v) = env {
            command.env("RUNBOOK_BOARD_TOKEN", v);
        }
        // A board that starts serves until stopped: wait a bounded time.
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let code = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.code();
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(code, Some(2), "{args:?} {env:?}");
    }
    let (_, t) = Test::new()
        .runbook("version: 1\nname: x\nsteps: [{id: a, run: 'touch ran'}]\n")
        .args([
            "run",
            "runbook.yaml",
            "--state-dir",
            "state",
            "--board",
            "127.0.0.1:0",
            "--board-token",
            "",
        ])
        .status(2)
        .run();
    assert!(!t.path().join("ran").exists());
}

/// Without a token, a board on loopback answers only to a loopback name: a
/// web page the operator opens cannot point a name of its own at
/// 127.0.0.1 (DNS rebinding) and read the run.
#[test]
fn a_board_on_loopback_without_a_token_refuses_another_host_name() {
    let t = hostile_run();
    let board = serve(
        t.path(),
        &["board", "--state-dir", "state", "--listen", "127.0.0.1:0"],
    );
    let port = board.addr.rsplit(':').next().unwrap();
    for route in ["/", "/api/run", "/events"] {
        let (code, _) = request(
            &board.addr,
            "GET",
            route,
            &format!("Host: rebind.example:{port}\r\n"),
        );
        assert_eq!(code, 403, "{route}");
    }
    for host in [format!("localhost:{port}"), board.addr.clone()] {
        let (code, _) = request(&board.addr, "GET", "/api/run", &format!("Host: {host}\r\n"));
        assert_eq!(code, 200, "{host}");
    }
}

#[test]
fn a_board_open_to_the_network_without_a_token_warns() {
    let t = hostile_run();
    let board = serve(
        t.path(),
        &["board", "--state-dir", "state", "--listen", "0.0.0.0:0"],
    );
    assert!(
        board.said.contains("warning:") && board.said.contains("--token"),
        "{}",
        board.said
    );
    let guarded = serve(
        t.path(),
        &[
            "board",
            "--state-dir",
            "state",
            "--listen",
            "0.0.0.0:0",
            "--token",
            "t0k",
        ],
    );
    assert!(!guarded.said.contains("warning:"), "{}", guarded.said);
}

/// RUNBOOK_BOARD_TOKEN in the environment (the way that keeps the token
/// out of `ps`) does not stop a `run` without `--board`.
#[test]
fn a_board_token_in_the_environment_does_not_stop_a_run_without_a_board() {
    Test::new()
        .runbook("version: 1\nname: x\nsteps: [{id: a, run: 'true'}]\n")
        .env("RUNBOOK_BOARD_TOKEN", "t0k")
        .args(["run", "runbook.yaml", "--state-dir", "state", "-q"])
        .status(0)
        .run();
}

/// `runbook board` reads only what was added to the journal it follows,
/// and reads it again whole when it is another journal: shorter than what
/// was read, or longer with another first line.
#[test]
fn the_standalone_board_follows_its_journal_and_starts_over_on_another_one() {
    let (_, t) = Test::new()
        .runbook("version: 1\nname: follow\nsteps:\n  - {id: a, run: 'true'}\n  - {id: b, depends_on: [a], run: 'true'}\n")
        .args(["run", "runbook.yaml", "--state-dir", "state", "-q"])
        .args(["--operator", "alice"])
        .run();
    let runs = t.path().join("state/runs");
    let id = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let journal = runs.join(id).join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let handoff = |who: &str| {
        format!(
            "{{\"at\": \"2027-01-01T00:00:00.000Z\", \"elapsed_ms\": 0, \"event\": \"handed-off\", \"operator\": \"{who}\"}}\n"
        )
    };
    let board = serve(
        t.path(),
        &["board", "--state-dir", "state", "--listen", "127.0.0.1:0"],
    );
    let count = |api: &serde_json::Value| api["events"].as_u64().unwrap() as usize;
    let operators = |api: &serde_json::Value| api["operators"].to_string();
    assert_eq!(count(&api(&board.addr)), lines.len());
    // A line being written (no newline yet) waits for its end.
    let bob = handoff("bob");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    file.write_all(&bob.as_bytes()[..20]).unwrap();
    // Long enough for the board to look (it does every 250 ms) at the
    // torn line; the assertions below hold either way.
    std::thread::sleep(Duration::from_millis(600));
    file.write_all(&bob.as_bytes()[20..]).unwrap();
    file.write_all(handoff("carol").as_bytes()).unwrap();
    drop(file);
    eventually("the board folds both hand-offs", || {
        count(&api(&board.addr)) == lines.len() + 2
    });
    assert_eq!(operators(&api(&board.addr)), r#"["alice","bob","carol"]"#);
    // Shorter: read again from the start.
    std::fs::write(&journal, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
    eventually("the board reads the shorter journal whole", || {
        count(&api(&board.addr)) == 2
    });
    assert_eq!(operators(&api(&board.addr)), r#"["alice"]"#);
    // Longer, but its first line is another run's start.
    let mut other = lines[0].replace("\"alice\"", "\"zoe\"") + "\n";
    for line in &lines[1..] {
        other.push_str(line);
        other.push('\n');
    }
    other.push_str(&handoff("yann"));
    std::fs::write(&journal, &other).unwrap();
    eventually("the board reads the other journal whole", || {
        count(&api(&board.addr)) == lines.len() + 1
    });
    let api = api(&board.addr);
    assert_eq!(operators(&api), r#"["zoe","yann"]"#);
    assert_eq!(step_status(&api, "b"), "ok");
}
