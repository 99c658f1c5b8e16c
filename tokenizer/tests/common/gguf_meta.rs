//! A minimal GGUF metadata reader, for tests and the speed example only:
//! header and key/value pairs (all value types, nested arrays included);
//! tensor infos and data are not read.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use edgedecoding_tokenizer::GgufVocab;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Uint(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<Value>),
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

struct Reader<R: Read> {
    r: R,
}

impl<R: Read> Reader<R> {
    fn bytes<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b)?;
        Ok(b)
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    fn string(&mut self) -> io::Result<String> {
        let len = self.u64()?;
        if len > 1 << 30 {
            return Err(bad(format!("string of {len} bytes")));
        }
        let mut buf = vec![0u8; len as usize];
        self.r.read_exact(&mut buf)?;
        String::from_utf8(buf).map_err(|e| bad(e.to_string()))
    }
    fn value(&mut self, ty: u32) -> io::Result<Value> {
        Ok(match ty {
            0 => Value::Uint(self.bytes::<1>()?[0] as u64),
            1 => Value::Int(self.bytes::<1>()?[0] as i8 as i64),
            2 => Value::Uint(u16::from_le_bytes(self.bytes()?) as u64),
            3 => Value::Int(i16::from_le_bytes(self.bytes()?) as i64),
            4 => Value::Uint(self.u32()? as u64),
            5 => Value::Int(i32::from_le_bytes(self.bytes()?) as i64),
            6 => Value::Float(f32::from_le_bytes(self.bytes()?) as f64),
            7 => Value::Bool(self.bytes::<1>()?[0] != 0),
            8 => Value::Str(self.string()?),
            9 => {
                let elem = self.u32()?;
                let n = self.u64()?;
                if n > 1 << 28 {
                    return Err(bad(format!("array of {n} elements")));
                }
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(self.value(elem)?);
                }
                Value::Array(v)
            }
            10 => Value::Uint(self.u64()?),
            11 => Value::Int(i64::from_le_bytes(self.bytes()?)),
            12 => Value::Float(f64::from_le_bytes(self.bytes()?)),
            other => return Err(bad(format!("unknown GGUF value type {other}"))),
        })
    }
}

/// Reads the metadata key/value pairs of a GGUF v2/v3 file.
pub fn read_metadata(path: &Path) -> io::Result<HashMap<String, Value>> {
    let mut r = Reader {
        r: BufReader::with_capacity(1 << 20, File::open(path)?),
    };
    if &r.bytes::<4>()? != b"GGUF" {
        return Err(bad("not a GGUF file"));
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(bad(format!("GGUF version {version} not supported")));
    }
    let _tensor_count = r.u64()?;
    let kv_count = r.u64()?;
    let mut kv = HashMap::new();
    for _ in 0..kv_count {
        let key = r.string()?;
        let ty = r.u32()?;
        let value = r.value(ty)?;
        kv.insert(key, value);
    }
    Ok(kv)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::Str(s) => s.clone(),
                other => panic!("expected a string, got {other:?}"),
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn uint(v: Option<&Value>) -> Option<u32> {
    match v {
        Some(Value::Uint(x)) => u32::try_from(*x).ok(),
        Some(Value::Int(x)) => u32::try_from(*x).ok(),
        _ => None,
    }
}

/// The tokenizer part of the metadata, as `edgedecoding_tokenizer` wants it.
pub fn vocab(kv: &HashMap<String, Value>) -> GgufVocab {
    GgufVocab {
        tokens: strings(kv.get("tokenizer.ggml.tokens")),
        merges: strings(kv.get("tokenizer.ggml.merges")),
        token_type: match kv.get("tokenizer.ggml.token_type") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| match x {
                    Value::Int(i) => *i as i32,
                    Value::Uint(u) => *u as i32,
                    other => panic!("token type {other:?}"),
                })
                .collect(),
            _ => Vec::new(),
        },
        pre: match kv.get("tokenizer.ggml.pre") {
            Some(Value::Str(s)) => s.clone(),
            _ => String::new(),
        },
        bos_token_id: uint(kv.get("tokenizer.ggml.bos_token_id")),
        eos_token_id: uint(kv.get("tokenizer.ggml.eos_token_id")),
    }
}

pub fn string(kv: &HashMap<String, Value>, key: &str) -> Option<String> {
    match kv.get(key) {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    }
}
