//! The loops of `generate` and `chat`, one token per call, so that every face
//! (the CLI, the Python package) produces the same tokens. The text is the
//! caller's: it receives each token in `emit`, before the decoder computes the
//! next one, and turns it into text with [`Tokenizer::streamer`].

use anyhow::Result;
use edgedecoding_model::{Backend, Decoder};

use crate::text::{Sampler, Tokenizer};

/// `generate`: after the prompt, greedy or sampled tokens until an end
/// token, `max_tokens` tokens, or the end of the context.
pub struct Generate {
    next: u32,
    left: usize,
    parity: bool,
    sampler: Sampler,
    over: bool,
    context_full: bool,
}

impl Generate {
    /// Prefills `prompt` at the decoder's position and picks the first token.
    /// `parity` decodes like the accelerator (the chunk of 8 re-run).
    pub fn start<B: Backend>(
        d: &mut Decoder<'_, '_, B>,
        prompt: &[u32],
        mut sampler: Sampler,
        parity: bool,
        max_tokens: usize,
    ) -> Result<Self> {
        for &t in prompt {
            if let Ok(r) = d.model().row_of_token(t) {
                sampler.observe(r);
            }
        }
        let greedy = d.prefill(prompt)?;
        let next = sampler.pick(d.logits(), d.model(), greedy);
        Ok(Self {
            next,
            left: max_tokens,
            parity,
            sampler,
            over: false,
            context_full: false,
        })
    }

    /// One token: `false` when the generation is over (an end token or
    /// `max_tokens` reached, or the context filled by the previous step).
    /// Otherwise hands the token to `emit`, then feeds it to the decoder and
    /// picks the next one — unless the context is full, which ends the
    /// generation after this token ([`Self::context_full`]).
    pub fn step<B: Backend>(
        &mut self,
        d: &mut Decoder<'_, '_, B>,
        tok: &dyn Tokenizer,
        emit: &mut dyn FnMut(u32) -> Result<()>,
    ) -> Result<bool> {
        if self.over || self.left == 0 || tok.is_end(self.next) {
            self.over = true;
            return Ok(false);
        }
        self.left -= 1;
        emit(self.next)?;
        if d.pos() >= d.state().capacity() {
            self.over = true;
            self.context_full = true;
            return Ok(true);
        }
        let greedy = if self.parity {
            d.decode_parity(self.next)?
        } else {
            d.decode(self.next)?
        };
        self.next = self.sampler.pick(d.logits(), d.model(), greedy);
        Ok(true)
    }

    /// The generation stopped at the end of the context.
    pub fn context_full(&self) -> bool {
        self.context_full
    }
}

/// One turn of `chat`: the user's message in the chat template, then the
/// answer (greedy, or from the turn's [`Sampler`]) until an end token,
/// `max_tokens` tokens or the end of the context; [`ChatTurn::finish`] closes
/// the turn and hands the sampler back for the next one.
pub struct ChatTurn {
    next: u32,
    left: usize,
    over: bool,
    sampler: Sampler,
}

impl ChatTurn {
    /// Prefills the turn (`first`: the conversation's first, with the system
    /// prompt) at the decoder's position; `None`, with nothing changed, when it
    /// does not fit the context with one position to spare.
    pub fn start<B: Backend>(
        d: &mut Decoder<'_, '_, B>,
        tok: &dyn Tokenizer,
        message: &str,
        first: bool,
        max_tokens: usize,
    ) -> Result<Option<Self>> {
        let system = first.then_some(crate::text::SYSTEM_PROMPT);
        Self::start_sampled(d, tok, message, system, max_tokens, Sampler::greedy()).map(|r| r.ok())
    }

    /// [`Self::start`] with a sampler and `system`, the system prompt of a
    /// conversation's first turn (`None`: a later turn); when the turn does not
    /// fit, the sampler comes back in `Err`.
    pub fn start_sampled<B: Backend>(
        d: &mut Decoder<'_, '_, B>,
        tok: &dyn Tokenizer,
        message: &str,
        system: Option<&str>,
        max_tokens: usize,
        mut sampler: Sampler,
    ) -> Result<std::result::Result<Self, Sampler>> {
        let toks = tok.chat_turn(message, system);
        if d.pos() + toks.len() + 1 > d.state().capacity() {
            return Ok(Err(sampler));
        }
        for &t in &toks {
            if let Ok(r) = d.model().row_of_token(t) {
                sampler.observe(r);
            }
        }
        let greedy = d.prefill(&toks)?;
        let next = sampler.pick(d.logits(), d.model(), greedy);
        Ok(Ok(Self {
            next,
            left: max_tokens,
            over: false,
            sampler,
        }))
    }

    /// One token of the answer: `false` when it is over; otherwise hands the
    /// token to `emit` and feeds it to the decoder.
    pub fn step<B: Backend>(
        &mut self,
        d: &mut Decoder<'_, '_, B>,
        tok: &dyn Tokenizer,
        emit: &mut dyn FnMut(u32) -> Result<()>,
    ) -> Result<bool> {
        if self.over || self.left == 0 || tok.is_end(self.next) || d.pos() >= d.state().capacity() {
            self.over = true;
            return Ok(false);
        }
        self.left -= 1;
        emit(self.next)?;
        let greedy = d.decode(self.next)?;
        self.next = self.sampler.pick(d.logits(), d.model(), greedy);
        Ok(true)
    }

    /// Closes the turn as the template does; `false` when the context is full
    /// (the conversation cannot go on).
    pub fn finish<B: Backend>(
        self,
        d: &mut Decoder<'_, '_, B>,
        tok: &dyn Tokenizer,
    ) -> Result<bool> {
        Ok(self.finish_sampled(d, tok)?.0)
    }

    /// [`Self::finish`], handing the sampler back for the next turn.
    pub fn finish_sampled<B: Backend>(
        self,
        d: &mut Decoder<'_, '_, B>,
        tok: &dyn Tokenizer,
    ) -> Result<(bool, Sampler)> {
        let ctx = d.state().capacity();
        if d.pos() >= ctx {
            return Ok((false, self.sampler));
        }
        let end = tok.end_of_turn();
        if !end.is_empty() && d.pos() + end.len() <= ctx {
            d.prefill(&end)?;
        }
        Ok((true, self.sampler))
    }
}
