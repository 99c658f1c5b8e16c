//! The Qwen2.5 chat template, for plain (tool-less) conversations.
//!
//! Transcribed from the `tokenizer.chat_template` of Qwen2.5 instruct models
//! (the same Jinja text is in the GGUF used by the tests and in Qwen2.5's
//! `tokenizer_config.json`), branch without `tools`:
//!
//! ```jinja
//! {%- if messages[0]['role'] == 'system' %}
//!     {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
//! {%- else %}
//!     {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
//! {%- endif %}
//! {%- for message in messages %}
//!     {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
//!         {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
//!     ...
//! {%- if add_generation_prompt %}
//!     {{- '<|im_start|>assistant\n' }}
//! ```
//!
//! `tests/chat.rs` compares [`chat_prompt`] with that template rendered by
//! Jinja2 for several conversations.

/// Qwen2.5's default system prompt, used when the first message is not a system message.
/// (Qwen2 used "You are a helpful assistant."; pass it as a system message to get it.)
pub const QWEN25_DEFAULT_SYSTEM_PROMPT: &str =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

/// Who speaks a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role name used in the template.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// Renders a conversation with the Qwen2.5 chat template.
///
/// If the first message is not a system message, the default system prompt
/// ([`QWEN25_DEFAULT_SYSTEM_PROMPT`]) is put first. With `add_generation_prompt`
/// the text ends with `<|im_start|>assistant\n`, ready for the model to answer.
/// An empty `messages` gives the default system turn (the Jinja template would
/// fail on it).
pub fn chat_prompt(messages: &[(Role, &str)], add_generation_prompt: bool) -> String {
    let mut out = String::new();
    let push_turn = |out: &mut String, role: &str, content: &str| {
        out.push_str("<|im_start|>");
        out.push_str(role);
        out.push('\n');
        out.push_str(content);
        out.push_str("<|im_end|>\n");
    };
    let rest = match messages.first() {
        Some((Role::System, content)) => {
            push_turn(&mut out, "system", content);
            &messages[1..]
        }
        _ => {
            push_turn(&mut out, "system", QWEN25_DEFAULT_SYSTEM_PROMPT);
            messages
        }
    };
    for (role, content) in rest {
        push_turn(&mut out, role.as_str(), content);
    }
    if add_generation_prompt {
        out.push_str("<|im_start|>assistant\n");
    }
    out
}
