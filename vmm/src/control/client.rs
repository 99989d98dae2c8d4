//! `p2pvm ctl SOCKET COMMAND [KEY=VALUE...]` and `p2pvm stats SOCKET`.

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::server::{read_line, Line};
use crate::error::{Error, Result};

/// One request to the VM at `socket`; its reply.
pub fn request(socket: &Path, command: &str, args: Map<String, Value>) -> Result<Value> {
    let io = |what: &str, e| Error::io(format!("{what} {}", socket.display()), e);
    let stream = UnixStream::connect(socket).map_err(|e| io("connecting to", e))?;
    let mut w = stream.try_clone().map_err(|e| io("connecting to", e))?;
    let mut r = BufReader::new(stream);
    let mut next = || -> Result<Value> {
        match read_line(&mut r).map_err(|e| io("reading from", e))? {
            Line::Text(t) => serde_json::from_slice(&t).map_err(|e| {
                Error::Usage(format!(
                    "{}: a reply that is not JSON: {e}",
                    socket.display()
                ))
            }),
            _ => Err(Error::Usage(format!(
                "{} closed the connection",
                socket.display()
            ))),
        }
    };
    let _greeting = next()?;
    let req = json!({"execute": command, "arguments": Value::Object(args)});
    writeln!(w, "{req}").map_err(|e| io("writing to", e))?;
    next()
}

/// `KEY=VALUE` words as arguments: a value that parses as JSON is taken
/// as such (`hidden=true`, `stuck_on=["RR"]`), anything else as a string.
pub fn parse_args(words: &[String]) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(Error::Usage(format!("'{w}': arguments are KEY=VALUE")));
        };
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        m.insert(k.to_string(), value);
    }
    Ok(m)
}

/// `p2pvm ctl`: prints the reply; exit 1 on an error reply.
pub fn ctl(socket: &Path, command: &str, words: &[String]) -> Result<i32> {
    let reply = request(socket, command, parse_args(words)?)?;
    if let Some(e) = reply.get("error") {
        eprintln!(
            "p2pvm: {}: {}",
            e["class"].as_str().unwrap_or("error"),
            e["desc"].as_str().unwrap_or("")
        );
        return Ok(1);
    }
    let out = reply.get("return").cloned().unwrap_or(Value::Null);
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(0)
}

/// `p2pvm stats`: the running VM's link counters as a table.
pub fn stats(socket: &Path) -> Result<i32> {
    let reply = request(socket, "query-counters", Map::new())?;
    let Some(doc) = reply.get("return") else {
        return Err(Error::Usage(format!("{}: {}", socket.display(), reply)));
    };
    print!("{}", table(doc));
    Ok(0)
}

/// A counters document as a table: one row per link.
pub fn table(doc: &Value) -> String {
    let mut s = format!(
        "{:<12} {:<18} {:<12} {:>14} {:>10} {:>14} {:>10}\n",
        "node", "kind", "bdf", "up bytes", "up TLPs", "down bytes", "down TLPs"
    );
    for l in doc["links"].as_array().into_iter().flatten() {
        let n = |k: &str| l[k].as_u64().unwrap_or(0);
        s += &format!(
            "{:<12} {:<18} {:<12} {:>14} {:>10} {:>14} {:>10}\n",
            l["name"].as_str().unwrap_or("?"),
            l["kind"].as_str().unwrap_or("?"),
            l["bdf"].as_str().unwrap_or("?"),
            n("up_bytes"),
            n("up_tlps"),
            n("down_bytes"),
            n("down_tlps"),
        );
    }
    if let Some(r) = doc["refused"].as_object() {
        let parts: Vec<String> = r.iter().map(|(k, v)| format!("{k} {v}")).collect();
        s += &format!("refused: {}\n", parts.join(", "));
    }
    s
}
