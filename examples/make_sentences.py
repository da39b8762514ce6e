"""Write the labelled sentence set that ships with stepwise (stepwise/models/sentences.csv).

Short English sentences on four topics (food, sport, technology, weather), 100 per topic, made from hand-written
templates and word lists per topic: each template is filled with words drawn by a seeded generator, and repeats are
dropped, so the same run writes the same file. The probe of ``examples/train_minilm_probe.py`` is trained on it.

Run: ``python examples/make_sentences.py``
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

from stepwise.core.io import write_file

SEED = 0
PER_TOPIC = 100
OUT = Path(__file__).resolve().parent.parent / "stepwise" / "models" / "sentences.csv"

TOPICS: dict[str, dict[str, list[str]]] = {
    "food": {
        "templates": [
            "She baked {dish} with {ingredient} for dinner.",
            "The {dish} at the new {place} tastes of {ingredient}.",
            "Add a pinch of {ingredient} before you serve the {dish}.",
            "We ordered {dish} and shared it at the {place}.",
            "My grandmother cooks the best {dish} in town.",
            "Slice the {ingredient} thinly and fry it in butter.",
            "The chef at the {place} grills {dish} every evening.",
            "I had {dish} with fresh {ingredient} for lunch.",
            "Stir the sauce until the {ingredient} melts.",
            "This recipe for {dish} needs two cups of {ingredient}.",
        ],
        "dish": [
            "soup",
            "pasta",
            "bread",
            "a pie",
            "curry",
            "pancakes",
            "a salad",
            "risotto",
            "stew",
            "noodles",
            "fish",
            "dumplings",
            "a cake",
            "tacos",
        ],
        "ingredient": [
            "garlic",
            "cheese",
            "basil",
            "lemon",
            "ginger",
            "honey",
            "onions",
            "tomatoes",
            "pepper",
            "mushrooms",
            "cream",
            "chocolate",
            "rice",
            "sugar",
        ],
        "place": ["bakery", "restaurant", "cafe", "market", "diner", "kitchen", "bistro"],
    },
    "sport": {
        "templates": [
            "The {team} won the {event} with a late {score}.",
            "Our {player} trained hard before the {event}.",
            "The coach praised the {team} after the {event}.",
            "A {score} in the last minute decided the {event}.",
            "The {player} broke the record at the {event}.",
            "Fans cheered as the {team} scored a {score}.",
            "The {team} lost the {event} on penalties.",
            "She runs ten miles every morning to prepare for the {event}.",
            "The referee stopped the {event} after a foul by the {player}.",
            "The {player} signed a contract with the {team}.",
        ],
        "team": [
            "home team",
            "visitors",
            "national side",
            "local club",
            "champions",
            "underdogs",
            "rowing crew",
            "relay team",
            "rugby squad",
            "hockey team",
        ],
        "player": [
            "goalkeeper",
            "striker",
            "sprinter",
            "captain",
            "swimmer",
            "tennis player",
            "boxer",
            "cyclist",
            "pitcher",
            "defender",
        ],
        "event": [
            "final",
            "match",
            "marathon",
            "tournament",
            "derby",
            "championship",
            "race",
            "league game",
            "semifinal",
            "cup tie",
        ],
        "score": ["goal", "try", "penalty", "header", "home run", "basket", "touchdown", "free kick"],
    },
    "technology": {
        "templates": [
            "The new {device} ships with a faster {part}.",
            "Restart the {device} after you install the {software}.",
            "Engineers fixed a bug in the {software} last week.",
            "My {device} crashed while the {software} was updating.",
            "The {part} of this {device} uses very little power.",
            "Developers released a new version of the {software}.",
            "You can connect the {device} to the network over wifi.",
            "The {software} stores your files in the cloud.",
            "A faulty {part} made the {device} overheat.",
            "The company announced a {device} with a bigger {part}.",
        ],
        "device": [
            "laptop",
            "phone",
            "tablet",
            "server",
            "router",
            "smartwatch",
            "printer",
            "camera",
            "computer",
            "game console",
        ],
        "part": [
            "processor",
            "battery",
            "screen",
            "memory chip",
            "graphics card",
            "hard drive",
            "keyboard",
            "sensor",
            "camera module",
        ],
        "software": [
            "operating system",
            "browser",
            "app",
            "database",
            "compiler",
            "spreadsheet program",
            "antivirus software",
            "email client",
            "video editor",
        ],
    },
    "weather": {
        "templates": [
            "Heavy {rain} is expected over the {region} tonight.",
            "The forecast says {sky} skies and a light {wind}.",
            "A cold {wind} swept across the {region} this morning.",
            "Temperatures will drop below freezing after the {rain}.",
            "The {region} saw {sky} weather all weekend.",
            "Farmers hope the {rain} ends before the harvest.",
            "A storm brought {rain} and a strong {wind} to the {region}.",
            "Take an umbrella: {rain} will reach the city by noon.",
            "After days of {rain}, the sun finally came out.",
            "The {region} will be {sky} with a chance of {rain}.",
        ],
        "rain": ["rain", "snow", "hail", "drizzle", "sleet", "showers", "thunderstorms", "fog"],
        "sky": ["clear", "cloudy", "sunny", "grey", "overcast", "bright", "stormy"],
        "wind": ["breeze", "wind", "gale", "gust", "northerly wind", "sea breeze"],
        "region": ["coast", "mountains", "valley", "north", "south", "islands", "plains", "capital"],
    },
}


def fill(template: str, words: dict[str, list[str]], rng: random.Random) -> str:
    """The template with each ``{slot}`` replaced by a word drawn from its list."""
    slots = {name: rng.choice(choices) for name, choices in words.items() if name != "templates"}
    return template.format(**slots)


def make(seed: int = SEED, per_topic: int = PER_TOPIC) -> list[tuple[str, str]]:
    """``per_topic`` distinct sentences per topic, the topics interleaved in a fixed order, as (text, topic)."""
    rng = random.Random(seed)
    by_topic: dict[str, list[str]] = {}
    for topic, words in TOPICS.items():
        found: list[str] = []
        while len(found) < per_topic:
            text = fill(rng.choice(words["templates"]), words, rng)
            if text not in found:
                found.append(text)
        by_topic[topic] = found
    return [(by_topic[topic][i], topic) for i in range(per_topic) for topic in TOPICS]


def main() -> None:
    rows = make()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["text", "topic"])
    writer.writerows(rows)
    write_file(OUT, text.getvalue())
    print(f"wrote {len(rows)} sentences on {len(TOPICS)} topics to {OUT}")


if __name__ == "__main__":
    main()
