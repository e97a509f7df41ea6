from __future__ import annotations

from actors.providers import ChatMessage, Rule, ScriptedLlm


async def reply(llm: ScriptedLlm, *messages: ChatMessage) -> list[str]:
    return [token async for token in llm.complete(messages)]


def user(text: str) -> ChatMessage:
    return ChatMessage("user", text, speaker="alice")


async def test_echo_when_no_rule_matches() -> None:
    tokens = await reply(ScriptedLlm(), user("turn on the lights"))
    assert "".join(tokens) == "You said: turn on the lights"


async def test_streams_word_by_word() -> None:
    tokens = await reply(ScriptedLlm(echo_prefix="Echo: "), user("one two three"))
    assert tokens == ["Echo: ", "one ", "two ", "three"]


async def test_first_matching_rule_wins_case_insensitively() -> None:
    llm = ScriptedLlm(
        rules=[
            Rule(match=r"open(ing)? hours?", reply="We open at nine."),
            Rule(keywords=("hours", "time"), reply="Ask me about opening hours."),
            Rule(match=".*", reply="Catch-all."),
        ]
    )
    assert "".join(await reply(llm, user("What are your OPENING HOURS?"))) == "We open at nine."
    assert "".join(await reply(llm, user("what TIME is it"))) == "Ask me about opening hours."
    assert "".join(await reply(llm, user("hello"))) == "Catch-all."


async def test_keywords_match_whole_words_only() -> None:
    llm = ScriptedLlm(rules=[Rule(keywords=("hi",), reply="Hello!")])
    assert "".join(await reply(llm, user("hi there"))) == "Hello!"
    assert "".join(await reply(llm, user("this is it"))) == "You said: this is it"


async def test_reply_can_quote_the_user() -> None:
    llm = ScriptedLlm(rules=[Rule(match="^say ", reply="Okay: {text}")])
    assert "".join(await reply(llm, user("say cheese"))) == "Okay: say cheese"


async def test_answers_the_last_user_message() -> None:
    history = (
        user("first question"),
        ChatMessage("assistant", "You said: first question"),
        user("second question"),
        ChatMessage("assistant", "thinking"),
    )
    assert "".join(await reply(ScriptedLlm(), *history)) == "You said: second question"


async def test_no_user_message_no_reply() -> None:
    assert await reply(ScriptedLlm(), ChatMessage("system", "be nice")) == []


async def test_stopping_early_closes_the_stream() -> None:
    tokens = ScriptedLlm(token_delay_s=0.001).complete([user("a b c d e f")])
    first = await anext(tokens)
    await tokens.aclose()
    assert first == "You "
