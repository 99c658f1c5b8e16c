//! `chat_prompt` against the Qwen2.5 chat template rendered by Jinja2
//! (`tests/fixtures/chat_expected.json`, made by make_qwen_expected.py from the
//! GGUF's `tokenizer.chat_template`).

mod common;

use edgedecoding_tokenizer::{chat_prompt, Role, QWEN25_DEFAULT_SYSTEM_PROMPT};

fn role(name: &str) -> Role {
    match name {
        "system" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        other => panic!("role {other}"),
    }
}

#[test]
fn matches_the_jinja_template() {
    let doc = common::read_json("chat_expected.json");
    let template = doc["template"].as_str().unwrap();
    assert!(template.contains(QWEN25_DEFAULT_SYSTEM_PROMPT));
    let chats = doc["chats"].as_array().unwrap();
    assert!(chats.len() >= 5);
    for chat in chats {
        let messages: Vec<(Role, &str)> = chat["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    role(m["role"].as_str().unwrap()),
                    m["content"].as_str().unwrap(),
                )
            })
            .collect();
        let gen = chat["add_generation_prompt"].as_bool().unwrap();
        assert_eq!(
            chat_prompt(&messages, gen),
            chat["rendered"].as_str().unwrap(),
            "{messages:?}"
        );
    }
}

#[test]
fn default_system_prompt_and_generation_prompt() {
    assert_eq!(
        chat_prompt(&[(Role::User, "Hi")], true),
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n\
         <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        chat_prompt(
            &[(Role::System, "You are a helpful assistant."), (Role::User, "Hi")],
            false
        ),
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
    );
    assert_eq!(
        chat_prompt(&[], true),
        format!(
            "<|im_start|>system\n{QWEN25_DEFAULT_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>assistant\n"
        )
    );
}

#[test]
fn chat_prompt_tokenizes_with_special_tokens() {
    let t = common::tiny();
    let ids = t.encode(&chat_prompt(&[(Role::User, "hello")], true));
    assert_eq!(ids.iter().filter(|&&id| id == 151644).count(), 3);
    assert_eq!(ids.iter().filter(|&&id| id == 151645).count(), 2);
    // ...<|im_end|> "\n" <|im_start|> "assistant" (byte tokens: no merges here) "\n"
    assert_eq!(
        ids[ids.len() - 13..],
        [151645, 10, 151644, 97, 115, 115, 105, 115, 116, 97, 110, 116, 10]
    );
}
