//! `edgedecoding.Model`: a model, its tokenizer and one CPU decoder.
//!
//! The decoder borrows the model bytes and its state memory, and the fast
//! backend borrows the model too. Rather than a self-referential Python object
//! (and `unsafe` lifetime erasure), each `Model` owns one worker thread: the
//! model buffer, the backend, the state memory and the decoder live on that
//! thread's stack, where ordinary borrows tie them together, for as long as the
//! Python object lives. Each method sends the worker a job (a closure over the
//! [`Session`]) and waits for its result with the GIL released; the decoder
//! state (KV cache, position) persists between calls. Dropping the `Model`
//! closes the channel and the worker ends.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError, PyStopIteration, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use edgedecoding_kernels::argmax::argmax_i32;
use edgedecoding_model::fast::Fast;
use edgedecoding_model::owned::ModelBuf;
use edgedecoding_model::{Config, Decoder, Model as ModelView, Site, Stage, StageRef, Values};
use edgedecoding_runtime::generate::{ChatTurn, Generate};
use edgedecoding_runtime::text::{nll_q12, Sampler, Tokenizer};
use edgedecoding_runtime::{bench, convert, source};

use crate::arrays::{count, ints, out, small, value_error};

/// A failure inside a job, sent back to the calling thread.
enum Fail {
    /// Bad input (tokens, context, text): `ValueError`.
    Value(String),
    /// The generation this call belongs to was replaced: `RuntimeError`.
    Runtime(String),
}

impl From<Fail> for PyErr {
    fn from(f: Fail) -> PyErr {
        match f {
            Fail::Value(m) => PyValueError::new_err(m),
            Fail::Runtime(m) => PyRuntimeError::new_err(m),
        }
    }
}

impl From<edgedecoding_model::ModelError> for Fail {
    fn from(e: edgedecoding_model::ModelError) -> Self {
        Fail::Value(e.to_string())
    }
}

impl From<anyhow::Error> for Fail {
    fn from(e: anyhow::Error) -> Self {
        Fail::Value(format!("{e:#}"))
    }
}

type Res<T> = Result<T, Fail>;

/// What the worker thread owns, lent to each job.
struct Session<'a> {
    model: ModelView<'a>,
    fast: &'a Fast<'a>,
    dec: Decoder<'a, 'a, &'a Fast<'a>>,
    tok: &'a dyn Tokenizer,
    /// The generation or chat answer in progress.
    gen: Option<Gen<'a>>,
    /// A chat has begun (its first turn carried the system prompt).
    chat_started: bool,
}

type Job = Box<dyn for<'a> FnOnce(&mut Session<'a>) + Send>;

/// The loop a generation runs: the CLI's `generate` or one `chat` turn
/// (`edgedecoding_runtime::generate`).
enum Kind {
    Generate(Generate),
    /// `None` once the turn is closed.
    Chat(Option<ChatTurn>),
}

/// A generation in progress, one token per step.
struct Gen<'a> {
    id: u64,
    kind: Kind,
    stream: Box<dyn FnMut(u32) -> String + 'a>,
    done: bool,
    t_decode: Instant,
}

/// What one step reports.
struct Step {
    piece: Option<String>,
    token: Option<u32>,
    decode_seconds: f64,
    context_full: bool,
}

impl<'a> Session<'a> {
    /// Forgets a generation; an unfinished chat answer is closed as it stands,
    /// so the conversation stays well formed.
    fn drop_gen(&mut self) -> Res<()> {
        if let Some(Gen {
            kind: Kind::Chat(Some(turn)),
            ..
        }) = self.gen.take()
        {
            turn.finish(&mut self.dec, self.tok)?;
        }
        Ok(())
    }

    /// One step of the generation `id`.
    fn step(&mut self, id: u64) -> Res<Step> {
        let Session { dec, tok, gen, .. } = self;
        let Some(g) = gen.as_mut().filter(|g| g.id == id) else {
            return Err(Fail::Runtime(
                "this generation was ended by a later call on the same Model (generate, stream, chat, prefill, decode or reset)".into(),
            ));
        };
        let mut emitted = None;
        let mut emit = |t: u32| {
            emitted = Some(t);
            Ok(())
        };
        let (going, context_full) = match &mut g.kind {
            _ if g.done => (false, false),
            Kind::Generate(run) => {
                let going = run.step(dec, *tok, &mut emit)?;
                (going && !run.context_full(), run.context_full())
            }
            Kind::Chat(turn) => match turn {
                Some(t) => {
                    let going = t.step(dec, *tok, &mut emit)?;
                    if going {
                        (true, false)
                    } else {
                        let t = turn.take().expect("an open turn");
                        (false, !t.finish(dec, *tok)?)
                    }
                }
                None => (false, false),
            },
        };
        g.done |= !going;
        let piece = emitted.map(|t| (g.stream)(t));
        Ok(Step {
            piece,
            token: emitted,
            decode_seconds: g.t_decode.elapsed().as_secs_f64(),
            context_full,
        })
    }
}

/// The worker thread: builds the session and runs jobs until the channel closes.
fn worker(
    buf: ModelBuf,
    tok: Arc<dyn Tokenizer>,
    threads: usize,
    jobs: mpsc::Receiver<Job>,
    ready: mpsc::SyncSender<Result<(), String>>,
) {
    let model = match buf.model() {
        Ok(m) => m,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let fast = match Fast::new(&model, threads) {
        Ok(f) => f,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let mut mem = source::state_mem(&model.config);
    let dec = match source::cpu_decoder(model, &model.config, &mut mem, &fast) {
        Ok(d) => d,
        Err(e) => {
            let _ = ready.send(Err(format!("{e:#}")));
            return;
        }
    };
    let mut s = Session {
        model,
        fast: &fast,
        dec,
        tok: &*tok,
        gen: None,
        chat_started: false,
    };
    if ready.send(Ok(())).is_err() {
        return;
    }
    while let Ok(job) = jobs.recv() {
        // a panic (a bug) fails only its call: the caller sees the reply
        // channel closed
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut s)));
    }
}

/// The stages of one probed call, appended per (site, stage).
#[derive(Default)]
struct Capture {
    stages: BTreeMap<(Site, Stage), Captured>,
}

struct Captured {
    start: usize,
    tokens: usize,
    values: Owned,
}

enum Owned {
    I32(Vec<i32>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    Bfp(Vec<i8>, Vec<u8>),
}

impl Capture {
    fn add(&mut self, s: StageRef<'_>) {
        let c = self.stages.entry((s.site, s.stage)).or_insert(Captured {
            start: s.start,
            tokens: 0,
            values: match s.values {
                Values::I32(_) => Owned::I32(vec![]),
                Values::I16(_) => Owned::I16(vec![]),
                Values::U32(_) => Owned::U32(vec![]),
                Values::Bfp(_) => Owned::Bfp(vec![], vec![]),
            },
        });
        c.tokens += s.tokens;
        match (&mut c.values, s.values) {
            (Owned::I32(a), Values::I32(v)) => a.extend_from_slice(v),
            (Owned::I16(a), Values::I16(v)) => a.extend_from_slice(v),
            (Owned::U32(a), Values::U32(v)) => a.extend_from_slice(v),
            (Owned::Bfp(m, e), Values::Bfp(v)) => {
                for b in v {
                    m.extend_from_slice(&b.m);
                    e.push(b.e);
                }
            }
            _ => {}
        }
    }

    /// `{"embedding": {...}, "layers": [{...}, ...], "final": {...}, "head":
    /// {...}}`: per stage an array `[tokens, width]` (a BFP stage `s` as `s_m`
    /// int8 and `s_e` uint8, as in the golden vectors), and per site `start`,
    /// the first position.
    fn into_py(self, py: Python<'_>, n_layers: usize) -> PyResult<Py<PyDict>> {
        let result = PyDict::new(py);
        let layers: Vec<Bound<'_, PyDict>> = (0..n_layers).map(|_| PyDict::new(py)).collect();
        for ((site, stage), c) in self.stages {
            let d = match site {
                Site::Layer(l) => layers[l].clone(),
                other => {
                    let key = match other {
                        Site::Embedding => "embedding",
                        Site::Final => "final",
                        _ => "head",
                    };
                    match result.get_item(key)? {
                        Some(d) => d.downcast_into::<PyDict>()?,
                        None => {
                            let d = PyDict::new(py);
                            result.set_item(key, &d)?;
                            d
                        }
                    }
                }
            };
            if !d.contains("start")? {
                d.set_item("start", c.start)?;
            }
            let t = c.tokens.max(1);
            let name = stage.name();
            match c.values {
                Owned::I32(v) => d.set_item(name, out(py, v.clone(), &[t, v.len() / t])?)?,
                Owned::I16(v) => d.set_item(name, out(py, v.clone(), &[t, v.len() / t])?)?,
                Owned::U32(v) => d.set_item(name, out(py, v.clone(), &[t, v.len() / t])?)?,
                Owned::Bfp(m, e) => {
                    let (nm, ne) = (m.len() / t, e.len() / t);
                    d.set_item(format!("{name}_m"), out(py, m, &[t, nm])?)?;
                    d.set_item(format!("{name}_e"), out(py, e, &[t, ne])?)?;
                }
            }
        }
        result.set_item("layers", PyList::new(py, layers)?)?;
        Ok(result.unbind())
    }
}

/// A model loaded for decoding on the CPU: a `.edq` file (memory-mapped) or a
/// checkpoint (`.gguf` file, Hugging Face folder) converted on load; its
/// tokenizer; one decoder whose context (KV cache) persists between calls.
///
/// `generate`, `stream` and `bench` start from an empty context; `chat`
/// continues its conversation until `reset()`; `prefill` and `decode`
/// continue the current context. Long calls release the GIL.
#[pyclass(module = "edgedecoding", frozen)]
pub struct Model {
    jobs: mpsc::Sender<Job>,
    tok: Arc<dyn Tokenizer>,
    config: Config,
    name: String,
    threads: usize,
    next_id: AtomicU64,
}

impl Model {
    /// Runs `f` on the worker with the GIL released and returns its result.
    fn run<R: Send + 'static>(
        &self,
        py: Python<'_>,
        f: impl for<'a> FnOnce(&mut Session<'a>) -> R + Send + 'static,
    ) -> PyResult<R> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |s: &mut Session<'_>| {
            let _ = tx.send(f(s));
        });
        self.jobs
            .send(job)
            .map_err(|_| PyRuntimeError::new_err("the model's worker thread has stopped"))?;
        py.allow_threads(move || rx.recv()).map_err(|_| {
            PyRuntimeError::new_err(
                "internal error: the decoder panicked (a bug; please report it)",
            )
        })
    }

    /// `run` for jobs that can fail.
    fn call<R: Send + 'static>(
        &self,
        py: Python<'_>,
        f: impl for<'a> FnOnce(&mut Session<'a>) -> Res<R> + Send + 'static,
    ) -> PyResult<R> {
        Ok(self.run(py, f)??)
    }

    fn token_list(&self, tokens: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
        let t = ints::<u32>(tokens, "tokens")?;
        if t.shape.len() > 1 {
            return Err(value_error(format!(
                "tokens: expected a list or 1-d array of token ids, got shape {:?}",
                t.shape
            )));
        }
        Ok(t.data)
    }

    fn start(slf: &Bound<'_, Self>, kind: StartKind, max_tokens: usize) -> PyResult<Generation> {
        let py = slf.py();
        let this = slf.get();
        let id = this.next_id.fetch_add(1, Ordering::Relaxed);
        let (prompt_tokens, prefill_seconds) = this.call(py, move |s| {
            let t0 = Instant::now();
            let (n, kind) = match kind {
                StartKind::Generate {
                    prompt,
                    parity,
                    sampler,
                } => {
                    s.drop_gen()?;
                    s.chat_started = false;
                    let toks = s.tok.encode(&prompt);
                    if toks.is_empty() {
                        return Err(Fail::Value("the prompt encodes to no tokens".into()));
                    }
                    s.dec.reset();
                    let g = Generate::start(&mut s.dec, &toks, sampler, parity, max_tokens)?;
                    (toks.len(), Kind::Generate(g))
                }
                StartKind::Chat { message } => {
                    s.drop_gen()?;
                    let pos = s.dec.pos();
                    let Some(turn) =
                        ChatTurn::start(&mut s.dec, s.tok, &message, !s.chat_started, max_tokens)?
                    else {
                        return Err(Fail::Value(format!(
                            "context full: {pos} of {} positions used; start a new chat with reset()",
                            s.model.config.ctx
                        )));
                    };
                    s.chat_started = true;
                    (s.dec.pos() - pos, Kind::Chat(Some(turn)))
                }
            };
            let tp = t0.elapsed().as_secs_f64();
            let tok: &dyn Tokenizer = s.tok;
            s.gen = Some(Gen {
                id,
                kind,
                stream: tok.streamer(),
                done: false,
                t_decode: Instant::now(),
            });
            Ok((n, tp))
        })?;
        Ok(Generation {
            model: slf.clone().unbind(),
            id,
            done: false,
            text: String::new(),
            tokens: vec![],
            prompt_tokens,
            prefill_seconds,
            decode_seconds: 0.0,
            context_full: false,
        })
    }
}

/// How a generation starts.
enum StartKind {
    Generate {
        prompt: String,
        parity: bool,
        sampler: Sampler,
    },
    Chat {
        message: String,
    },
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn sampler(temperature: f32, top_k: usize, top_p: f32, seed: u64) -> PyResult<Sampler> {
    Sampler::new(temperature, top_k, top_p, seed).map_err(|e| value_error(e.to_string()))
}

#[pymethods]
impl Model {
    /// Loads a model: a `.edq` file (memory-mapped), a `.gguf` file or a
    /// Hugging Face folder (converted now, as `edgedecoding convert` does:
    /// about three minutes for Qwen2.5-0.5B on 2 cores). `threads` defaults to
    /// every core (results are identical for any count); `ctx`, `keep_vocab`,
    /// `keep_corpus` and `keep_list` apply to checkpoints only (KV-cache
    /// capacity; vocabulary pruning as the accelerator's 37984, by the keep-list
    /// rule of `edgedecoding convert --keep-vocab` ranked on the built-in corpus
    /// or the text file `keep_corpus`, or the explicit list file `keep_list`).
    /// `progress(stage, done, total)`, if given, is called during a conversion.
    /// `quantizer` is `"gptq"` (error-compensating, the default) or `"rtn"`
    /// (round to nearest), as `convert --quantizer`. With `cache` (the
    /// default) a checkpoint's conversion is taken from, or stored in, the
    /// command line's conversion cache (`$EDGEDECODING_CACHE/converted`, else
    /// `~/.cache/edgedecoding/converted`), keyed by the checkpoint and every
    /// option that changes the bytes: a second load of the same checkpoint
    /// converts nothing (and calls no `progress`).
    #[staticmethod]
    #[pyo3(signature = (path, threads=None, ctx=1024, keep_vocab=None, progress=None, keep_corpus=None, keep_list=None, quantizer="gptq", cache=true))]
    fn load(
        py: Python<'_>,
        path: PathBuf,
        threads: Option<i64>,
        ctx: i64,
        keep_vocab: Option<i64>,
        progress: Option<PyObject>,
        keep_corpus: Option<PathBuf>,
        keep_list: Option<PathBuf>,
        quantizer: &str,
        cache: bool,
    ) -> PyResult<Model> {
        let quantizer = match quantizer {
            "rtn" => convert::Quantizer::Rtn,
            "gptq" => convert::Quantizer::Gptq,
            q => {
                return Err(value_error(format!(
                    "quantizer must be \"rtn\" or \"gptq\", not {q:?}"
                )))
            }
        };
        let threads = threads.map(|t| count("threads", t)).transpose()?;
        let ctx = count("ctx", ctx)?;
        let keep_vocab = keep_vocab.map(|k| count("keep_vocab", k)).transpose()?;
        let keep = match (keep_vocab, keep_corpus, keep_list) {
            (Some(_), _, Some(_)) => {
                return Err(value_error("keep_vocab and keep_list exclude each other"))
            }
            (None, Some(_), _) => return Err(value_error("keep_corpus needs keep_vocab")),
            (Some(n), corpus, None) => Some(edgedecoding_runtime::keep::Keep::Count { n, corpus }),
            (None, None, Some(l)) => Some(edgedecoding_runtime::keep::Keep::List(l)),
            (None, None, None) => None,
        };
        if !path.exists() {
            return Err(PyFileNotFoundError::new_err(format!(
                "{}: no such file or folder",
                path.display()
            )));
        }
        let threads = threads.unwrap_or_else(default_threads);
        if threads == 0 {
            return Err(value_error("threads must be at least 1"));
        }
        let name = path.display().to_string();
        let opts = convert::Opts {
            ctx: Some(ctx),
            keep,
            output_head: false,
            threads,
            quantizer,
            calib: None,
        };
        let cache_dir = cache.then(source::conversion_cache_dir);
        let mut report = |stage: &str, done: usize, total: usize| {
            if let Some(cb) = &progress {
                // an exception in the callback is printed, not raised: the
                // conversion goes on
                Python::with_gil(|py| {
                    if let Err(e) = cb.call1(py, (stage, done, total)) {
                        e.print(py);
                    }
                });
            }
        };
        let (buf, config, tok) = py
            .allow_threads(|| -> anyhow::Result<_> {
                let opened = source::open(&path, &opts, cache_dir.as_deref(), false, &mut report)?;
                let model = opened.buf.model()?;
                let config = model.config;
                let tok: Arc<dyn Tokenizer> = Arc::from(source::tokenizer(&model, opened.bpe)?);
                Ok((opened.buf, config, tok))
            })
            .map_err(|e| value_error(format!("loading {name}: {e:#}")))?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let wtok = tok.clone();
        std::thread::Builder::new()
            .name("edgedecoding-model".into())
            .spawn(move || worker(buf, wtok, threads, rx, ready_tx))
            .map_err(|e| PyRuntimeError::new_err(format!("starting the worker thread: {e}")))?;
        match py.allow_threads(move || ready_rx.recv()) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(value_error(format!("loading {name}: {e}"))),
            Err(_) => return Err(PyRuntimeError::new_err("the worker thread failed to start")),
        }
        Ok(Model {
            jobs,
            tok,
            config,
            name,
            threads,
            next_id: AtomicU64::new(1),
        })
    }

    /// The path it was loaded from.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Worker threads of the decoder.
    #[getter]
    fn threads(&self) -> usize {
        self.threads
    }

    /// The model's configuration: `n_layers`, `hidden`, `ffn`, `n_heads`,
    /// `n_kv_heads`, `head_dim`, `vocab`, `n_kept` (logits per position),
    /// `rope_theta`, `ctx`.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.config;
        let d = PyDict::new(py);
        d.set_item("n_layers", c.n_layers)?;
        d.set_item("hidden", c.hidden)?;
        d.set_item("ffn", c.ffn)?;
        d.set_item("n_heads", c.n_heads)?;
        d.set_item("n_kv_heads", c.n_kv_heads)?;
        d.set_item("head_dim", c.head_dim)?;
        d.set_item("vocab", c.vocab)?;
        d.set_item("n_kept", c.n_kept)?;
        d.set_item("rope_theta", c.rope_theta)?;
        d.set_item("ctx", c.ctx)?;
        Ok(d)
    }

    /// One-line description of the tokenizer.
    #[getter]
    fn tokenizer(&self) -> String {
        self.tok.describe()
    }

    fn __repr__(&self) -> String {
        let c = &self.config;
        format!(
            "edgedecoding.Model({:?}: {} layers, hidden {}, vocab {} ({} kept), ctx {}, {} threads)",
            self.name, c.n_layers, c.hidden, c.vocab, c.n_kept, c.ctx, self.threads
        )
    }

    /// Token ids of `text` (a pruned model's missing tokens are spelled with
    /// byte tokens, as the CLI does).
    fn tokenize(&self, text: &str) -> Vec<u32> {
        self.tok.encode(text)
    }

    /// The text of token ids, as `generate` streams it (special tokens
    /// left out). Unknown ids are a `ValueError`.
    fn detokenize(&self, tokens: &Bound<'_, PyAny>) -> PyResult<String> {
        let ids = self.token_list(tokens)?;
        if let Some(&bad) = ids.iter().find(|&&t| !self.tok.knows(t)) {
            return Err(value_error(format!("token {bad} is not in the vocabulary")));
        }
        Ok(self.tok.decode(&ids))
    }

    /// Generates text after `prompt` from an empty context, exactly as
    /// `edgedecoding generate` does (greedy by default; `temperature > 0`
    /// samples with `top_k`, `top_p` and `seed`; `parity` re-runs the chunk
    /// of 8 positions per step like the accelerator). Returns the generated
    /// text (without the prompt).
    #[pyo3(signature = (prompt, max_tokens=32, temperature=0.0, top_k=0, top_p=1.0, seed=1, parity=false))]
    fn generate(
        slf: &Bound<'_, Self>,
        prompt: String,
        max_tokens: i64,
        temperature: f32,
        top_k: i64,
        top_p: f32,
        seed: u64,
        parity: bool,
    ) -> PyResult<String> {
        let mut g = Model::stream(
            slf,
            prompt,
            max_tokens,
            temperature,
            top_k,
            top_p,
            seed,
            parity,
        )?;
        g.run_to_end(slf.py())?;
        Ok(g.text)
    }

    /// Like `generate`, as an iterator of text pieces; the iterator also
    /// holds `tokens`, `text`, `prompt_tokens`, `prefill_seconds`,
    /// `decode_seconds`, `decode_tok_s` and `prefill_tok_s`.
    #[pyo3(signature = (prompt, max_tokens=32, temperature=0.0, top_k=0, top_p=1.0, seed=1, parity=false))]
    fn stream(
        slf: &Bound<'_, Self>,
        prompt: String,
        max_tokens: i64,
        temperature: f32,
        top_k: i64,
        top_p: f32,
        seed: u64,
        parity: bool,
    ) -> PyResult<Generation> {
        let max_tokens = count("max_tokens", max_tokens)?;
        let sampler = sampler(temperature, count("top_k", top_k)?, top_p, seed)?;
        Model::start(
            slf,
            StartKind::Generate {
                prompt,
                parity,
                sampler,
            },
            max_tokens,
        )
    }

    /// One chat turn (Qwen chat template, the CLI's system prompt on the
    /// first turn), greedy like `edgedecoding chat`; returns the answer. The
    /// conversation continues with the next call until `reset()`.
    #[pyo3(signature = (message, max_tokens=128))]
    fn chat(slf: &Bound<'_, Self>, message: String, max_tokens: i64) -> PyResult<String> {
        let mut g = Model::chat_stream(slf, message, max_tokens)?;
        g.run_to_end(slf.py())?;
        Ok(g.text)
    }

    /// Like `chat`, as an iterator of text pieces.
    #[pyo3(signature = (message, max_tokens=128))]
    fn chat_stream(
        slf: &Bound<'_, Self>,
        message: String,
        max_tokens: i64,
    ) -> PyResult<Generation> {
        let max_tokens = count("max_tokens", max_tokens)?;
        Model::start(slf, StartKind::Chat { message }, max_tokens)
    }

    /// Forgets the context (and the chat).
    fn reset(&self, py: Python<'_>) -> PyResult<()> {
        self.call(py, |s| {
            s.gen = None;
            s.chat_started = false;
            s.dec.reset();
            Ok(())
        })
    }

    /// Positions of the context in use.
    #[getter]
    fn pos(&self, py: Python<'_>) -> PyResult<usize> {
        self.run(py, |s| s.dec.pos())
    }

    /// Feeds `tokens` (ids) at the next positions and returns the logits
    /// (int32 Q12, one per kept vocabulary row) of the last one, or of every
    /// one (`[len, n_kept]`) with `all_logits`.
    #[pyo3(signature = (tokens, all_logits=false))]
    fn prefill<'py>(
        &self,
        py: Python<'py>,
        tokens: &Bound<'py, PyAny>,
        all_logits: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let toks = self.token_list(tokens)?;
        let n = self.config.n_kept;
        let len = toks.len();
        let logits = self.call(py, move |s| {
            s.drop_gen()?;
            if all_logits {
                let mut all = vec![0i32; len * n];
                s.dec.prefill_all(&toks, &mut |i, lg| {
                    all[i * n..(i + 1) * n].copy_from_slice(lg)
                })?;
                Ok(all)
            } else {
                s.dec.prefill(&toks)?;
                Ok(s.dec.logits().to_vec())
            }
        })?;
        if all_logits {
            out(py, logits, &[len, n])
        } else {
            out(py, logits, &[n])
        }
    }

    /// Feeds one token at the next position; returns its logits (int32 Q12,
    /// `[n_kept]`). `parity` re-runs the current chunk of 8 positions as the
    /// accelerator does (same result).
    #[pyo3(signature = (token, parity=false))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        token: i64,
        parity: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let token = small("token", token)?;
        let n = self.config.n_kept;
        let logits = self.call(py, move |s| {
            s.drop_gen()?;
            if parity {
                s.dec.decode_parity(token)?;
            } else {
                s.dec.decode(token)?;
            }
            Ok(s.dec.logits().to_vec())
        })?;
        out(py, logits, &[n])
    }

    /// Logits (int32 Q12, `[n_kept]`) of the last computed position.
    fn logits<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let n = self.config.n_kept;
        let logits = self.run(py, |s| s.dec.logits().to_vec())?;
        out(py, logits, &[n])
    }

    /// The greedy next token (full id) after the last computed position.
    fn next_token(&self, py: Python<'_>) -> PyResult<u32> {
        self.run(py, |s| s.dec.next_token())
    }

    /// The token id of logits row `row` (differs from `row` in a pruned model).
    fn token_of_row(&self, py: Python<'_>, row: i64) -> PyResult<u32> {
        let row = count("row", row)?;
        if row >= self.config.n_kept {
            return Err(value_error(format!(
                "row = {row} is outside [0, {}]",
                self.config.n_kept as i64 - 1
            )));
        }
        self.run(py, move |s| s.model.token_of_row(row))
    }

    /// The logits row of token id `token` (a `ValueError` for a token a pruned
    /// model does not keep).
    fn row_of_token(&self, py: Python<'_>, token: i64) -> PyResult<usize> {
        let token = small("token", token)?;
        self.call(py, move |s| Ok(s.model.row_of_token(token)?))
    }

    /// `prefill` that also returns every intermediate of the pass, from the
    /// decoder's stage probe: `{"embedding": {...}, "layers": [{...} per
    /// layer], "final": {...}, "head": {...}}`, each stage an array
    /// `[tokens, width]` named as in docs/VECTORS.md §4 (BFP stages as `_m`
    /// and `_e`), each site with `start`, its first position.
    fn prefill_probed(&self, py: Python<'_>, tokens: &Bound<'_, PyAny>) -> PyResult<Py<PyDict>> {
        let toks = self.token_list(tokens)?;
        let cap = self.call(py, move |s| {
            s.drop_gen()?;
            let mut cap = Capture::default();
            s.dec
                .prefill_probed(&toks, &mut |st: StageRef<'_>| cap.add(st))?;
            Ok(cap)
        })?;
        cap.into_py(py, self.config.n_layers)
    }

    /// `decode(token, parity=True)` with the stage probe (as
    /// `prefill_probed`): the layer stages of the whole re-run chunk (padding
    /// slots included), the final norm and logits of the new position.
    fn decode_parity_probed(&self, py: Python<'_>, token: i64) -> PyResult<Py<PyDict>> {
        let token = small("token", token)?;
        let cap = self.call(py, move |s| {
            s.drop_gen()?;
            let mut cap = Capture::default();
            s.dec
                .decode_parity_probed(token, &mut |st: StageRef<'_>| cap.add(st))?;
            Ok(cap)
        })?;
        cap.into_py(py, self.config.n_layers)
    }

    /// Perplexity of `text` as `edgedecoding perplexity` computes it: windows
    /// of `window` tokens, each from an empty context (the session's context is
    /// left alone). Returns a dict with `perplexity`, `nll` (mean),
    /// `predictions`, `windows`, `tokens`, `top1` (greedy predictions equal to
    /// the next token) and `seconds`.
    #[pyo3(signature = (text, window=512, max_windows=0))]
    fn perplexity<'py>(
        &self,
        py: Python<'py>,
        text: String,
        window: i64,
        max_windows: i64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (window, max_windows) = (count("window", window)?, count("max_windows", max_windows)?);
        let (nll, count, windows, tokens, top1, secs) = self.call(py, move |s| {
            let model = s.model;
            let toks = s.tok.encode(&text);
            if let Some(&t) = toks.iter().find(|&&t| model.row_of_token(t).is_err()) {
                return Err(Fail::Value(format!("the text contains token {t}, which the model's kept vocabulary lacks: perplexity needs an unpruned model")));
            }
            let window = window.min(model.config.ctx);
            if window < 2 {
                return Err(Fail::Value("window must be at least 2 tokens".into()));
            }
            let mut windows: Vec<&[u32]> = toks.chunks_exact(window).collect();
            if max_windows > 0 {
                windows.truncate(max_windows);
            }
            if windows.is_empty() {
                return Err(Fail::Value(format!(
                    "the text has {} tokens, fewer than one window of {window}",
                    toks.len()
                )));
            }
            let row = |t: u32| model.row_of_token(t).unwrap_or(0);
            let (mut nll, mut count, mut top1) = (0.0f64, 0usize, 0usize);
            let mut mem = source::state_mem(&model.config);
            let t0 = Instant::now();
            for w in &windows {
                let mut d = source::cpu_decoder(model, &model.config, &mut mem, s.fast)?;
                d.prefill_all(w, &mut |i, lg| {
                    if i + 1 < w.len() {
                        nll += nll_q12(lg, row(w[i + 1]));
                        top1 += (argmax_i32(lg) == Some(row(w[i + 1]))) as usize;
                    }
                })?;
                count += w.len() - 1;
            }
            Ok((nll, count, windows.len(), toks.len(), top1, t0.elapsed().as_secs_f64()))
        })?;
        let d = PyDict::new(py);
        d.set_item("perplexity", (nll / count as f64).exp())?;
        d.set_item("nll", nll / count as f64)?;
        d.set_item("predictions", count)?;
        d.set_item("windows", windows)?;
        d.set_item("tokens", tokens)?;
        d.set_item("top1", top1)?;
        d.set_item("seconds", secs)?;
        Ok(d)
    }

    /// Prefill and decode speed as `edgedecoding bench` measures them (its
    /// prompt, one warm-up run, then one timed run; the session's context is
    /// left alone): `{"prefill_tok_s", "decode_tok_s", "prefill", "decode",
    /// "threads"}`.
    #[pyo3(signature = (prefill=64, decode=16))]
    fn bench<'py>(
        &self,
        py: Python<'py>,
        prefill: i64,
        decode: i64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (prefill, decode) = (count("prefill", prefill)?, count("decode", decode)?);
        if prefill.saturating_add(decode) > self.config.ctx {
            return Err(value_error(format!(
                "prefill {prefill} + decode {decode} exceeds the context {}",
                self.config.ctx
            )));
        }
        let (tp, td) = self.call(py, move |s| {
            let model = s.model;
            let prompt = bench::prompt(&model, prefill);
            let mut mem = source::state_mem(&model.config);
            let mut d = source::cpu_decoder(model, &model.config, &mut mem, s.fast)?;
            let first = model.token_of_row(0);
            bench::time_run(&mut d, &prompt[..prompt.len().min(8)], first, 2)?;
            Ok(bench::time_run(&mut d, &prompt, first, decode)?)
        })?;
        let d = PyDict::new(py);
        d.set_item(
            "prefill_tok_s",
            if prefill > 0 {
                prefill as f64 / tp
            } else {
                f64::NAN
            },
        )?;
        d.set_item("decode_tok_s", decode as f64 / td.max(1e-12))?;
        d.set_item("prefill", prefill)?;
        d.set_item("decode", decode)?;
        d.set_item("threads", self.threads)?;
        Ok(d)
    }
}

/// A generation in progress (`Model.stream`, `Model.chat_stream`): iterate for
/// the text pieces. `text` and `tokens` grow as it runs; the timings are those
/// the CLI prints (`decode_tok_s` = generated tokens / decode seconds).
#[pyclass(module = "edgedecoding")]
pub struct Generation {
    model: Py<Model>,
    id: u64,
    done: bool,
    /// The text generated so far.
    #[pyo3(get)]
    text: String,
    /// The generated token ids so far.
    #[pyo3(get)]
    tokens: Vec<u32>,
    /// Tokens of the prompt (or chat turn).
    #[pyo3(get)]
    prompt_tokens: usize,
    /// Prefill time.
    #[pyo3(get)]
    prefill_seconds: f64,
    /// Time since the prefill, up to the last step.
    #[pyo3(get)]
    decode_seconds: f64,
    /// The generation stopped at the end of the context.
    #[pyo3(get)]
    context_full: bool,
}

impl Generation {
    fn step(&mut self, py: Python<'_>) -> PyResult<Option<String>> {
        if self.done {
            return Ok(None);
        }
        let id = self.id;
        let st = self.model.get().call(py, move |s| s.step(id))?;
        self.decode_seconds = st.decode_seconds;
        self.context_full |= st.context_full;
        if let Some(t) = st.token {
            self.tokens.push(t);
        }
        match st.piece {
            Some(p) => {
                self.text.push_str(&p);
                if st.context_full {
                    self.done = true;
                }
                Ok(Some(p))
            }
            None => {
                self.done = true;
                Ok(None)
            }
        }
    }

    fn run_to_end(&mut self, py: Python<'_>) -> PyResult<()> {
        while self.step(py)?.is_some() {
            py.check_signals()?;
        }
        Ok(())
    }
}

#[pymethods]
impl Generation {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<String> {
        match self.step(py)? {
            Some(p) => Ok(p),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    /// Generated tokens per second of decoding (as the CLI prints it).
    #[getter]
    fn decode_tok_s(&self) -> f64 {
        self.tokens.len() as f64 / self.decode_seconds.max(1e-9)
    }

    /// Prompt tokens per second of prefill.
    #[getter]
    fn prefill_tok_s(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill_seconds.max(1e-9)
    }

    /// Runs to the end and returns the whole text.
    fn finish(&mut self, py: Python<'_>) -> PyResult<String> {
        self.run_to_end(py)?;
        Ok(self.text.clone())
    }
}

/// Registers `Model` and `Generation`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_class::<Generation>()?;
    Ok(())
}
