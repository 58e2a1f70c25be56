"""Count the words, sentences, lines and characters of a text (version 2 of word_stats)."""


def handler(text: str, top: int = 3) -> dict[str, object]:
    """Count the words, sentences, lines and characters of a text, and name its most frequent words.

    Args:
        text: The text to measure.
        top: How many of the most frequent words to return.
    """
    words = [w.strip(".,;:!?\"'()").lower() for w in text.split()]
    words = [w for w in words if w]
    counts: dict[str, int] = {}
    for word in words:
        counts[word] = counts.get(word, 0) + 1
    frequent = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
    sentences = sum(text.count(mark) for mark in ".!?") or (1 if words else 0)
    return {
        "words": len(words),
        "sentences": sentences,
        "lines": len(text.splitlines()) or 1,
        "characters": len(text),
        "most_frequent": [word for word, _ in frequent],
    }
