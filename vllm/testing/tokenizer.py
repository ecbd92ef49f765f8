"""A small byte-level BPE tokenizer trained locally (no downloads) for test checkpoints.

Training is deterministic and cached per vocab size, so every checkpoint a process builds shares
one tokenizer. It is saved as a ``PreTrainedTokenizerFast`` with a ChatML chat template.
"""

from __future__ import annotations

import json
import os
from functools import cache

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_PARAGRAPHS = [
    "Once upon a time, in a small village by the sea, there lived an old fisherman and his cat.",
    "Every morning he rowed out past the lighthouse, counting the waves: one, two, three, four.",
    "The quick brown fox jumps over the lazy dog. The five boxing wizards jump quickly!",
    "What is the capital of France? The capital of France is Paris. Berlin is in Germany.",
    "Rome, Madrid, Lisbon, Vienna, Prague and Warsaw are capitals of European countries.",
    "In 1969, Apollo 11 landed on the Moon; Neil Armstrong stepped out at 02:56 UTC.",
    "The temperature dropped to -12.5 degrees, and 3/4 of the town stayed indoors.",
    "Prices rose by 7% in 2023: bread cost $2.49, milk $1.15 and coffee about $4.00.",
    "Call 555-0199 or write to info@example.com before 31 December 2024 (office hours 9-17).",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # prints 5",
    "for i in range(10):\n    if i % 2 == 0:\n        print(i, 'is even')",
    "{\"name\": \"Alice\", \"age\": 30, \"tags\": [\"x\", \"y\"], \"ok\": true}",
    "Machine learning models learn patterns from data. Large language models predict the next "
    "token given the previous ones, and they are trained on a great deal of text.",
    "A paged KV cache stores keys and values in fixed-size blocks, so memory is not wasted when "
    "requests have different lengths. The scheduler decides which requests run in each step.",
    "She said, \"I'll be there at seven o'clock.\" He replied: 'Don't be late -- we leave soon.'",
    "Café, naïve, façade, jalapeño, crème brûlée and über are words with accents.",
    "Zürich, München, Kraków, São Paulo, Reykjavík and Århus are cities with special letters.",
    "Привет, как дела? Это простой пример текста на русском языке.",
    "Γειά σου κόσμε! Ελληνικά γράμματα: α β γ δ ε.",
    "日本語の文章も少し含めます。東京は日本の首都です。",
    "中文也可以：北京是中国的首都。你好，世界！",
    "Emoji test: 🙂 🚀 🌍 ✨ — and some symbols: © ® ™ € £ ¥ § ° ± × ÷.",
    "Mathematics: 2 + 2 = 4, 3 * 7 = 21, 10 / 4 = 2.5, sqrt(16) = 4, pi is about 3.14159.",
    "The list has items: apples, oranges, bananas; pears, grapes, and cherries.",
    "Monday, Tuesday, Wednesday, Thursday, Friday, Saturday and Sunday make up a week.",
    "January February March April May June July August September October November December",
    "The river flowed quietly through the valley while birds sang in the tall green trees.",
    "At night the stars shone brightly, and the children told stories about dragons and kings.",
    "Hello! How are you today? I am fine, thank you. Could you help me with my homework?",
    "Sure, I can help. Let's start with the first question and work through it step by step.",
    "Water boils at 100 degrees Celsius at sea level and freezes at 0 degrees Celsius.",
    "The Earth orbits the Sun once every 365.25 days, and the Moon orbits the Earth monthly.",
    "Red, orange, yellow, green, blue, indigo and violet are the colours of the rainbow.",
    "A B C D E F G H I J K L M N O P Q R S T U V W X Y Z a b c d e f g h i j k l m n o p q r s",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 42 64 100 128 256 512 1024 2048",
    "user: Tell me a joke.\nassistant: Why did the scarecrow win an award? He was outstanding "
    "in his field.",
    "Tabs\tand\tnewlines\nare whitespace;   multiple   spaces too.\n\nEnd of paragraph.",
    "URLs look like https://www.example.org/path?query=1&lang=en#section.",
]


def corpus() -> list[str]:
    """The built-in training corpus (a few KB of varied text, incl. multi-byte UTF-8)."""
    return list(_PARAGRAPHS)


@cache
def _trained_json(vocab_size: int) -> str:
    """Train once per vocab size; return the serialized `tokenizers` JSON."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < 256 + len(SPECIAL_TOKENS) + 1:
        raise ValueError(f"vocab_size={vocab_size} must be > {256 + len(SPECIAL_TOKENS)}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Repeat the corpus so frequent pairs are clearly ranked; sorted input keeps it deterministic.
    tok.train_from_iterator(corpus() * 3, trainer=trainer)
    return tok.to_str()


def train_tokenizer(out_dir: str | os.PathLike, vocab_size: int = 640) -> str:
    """Write a byte-level BPE ``PreTrainedTokenizerFast`` (ChatML template) to ``out_dir``.

    Returns ``out_dir``. The real vocab may be a little smaller than ``vocab_size`` when the
    corpus runs out of merges; read ``len(tokenizer)`` for the exact size.
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    os.makedirs(out_dir, exist_ok=True)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_trained_json(vocab_size)),
        bos_token=ENDOFTEXT,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        unk_token=None,
        additional_special_tokens=[IM_START, IM_END],
        model_max_length=1 << 20,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHATML_TEMPLATE
    fast.save_pretrained(str(out_dir))
    return str(out_dir)


def special_token_ids(vocab_size: int = 640) -> dict[str, int]:
    """Ids of the special tokens (stable: they are the first entries of the vocab)."""
    vocab = json.loads(_trained_json(vocab_size))["model"]["vocab"]
    return {t: vocab[t] for t in SPECIAL_TOKENS}


def tokenizer_vocab_size(vocab_size: int = 640) -> int:
    """Exact number of ids the trained tokenizer can emit."""
    data = json.loads(_trained_json(vocab_size))
    ids = set(data["model"]["vocab"].values()) | {t["id"] for t in data["added_tokens"]}
    return max(ids) + 1
