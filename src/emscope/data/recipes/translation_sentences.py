"""Generated translation sentences: five sentence frames with times, days, ages and prices.

Each frame is written once per language (French, Spanish, German, Italian) with slots that need
no agreement (digits for numbers, a noun phrase chosen whole), so every filled sentence is
grammatical. A wrong translation changes one slot the way translations go wrong: the opposite
verb (leaves/arrives, opens/closes), the wrong day or relative, a shifted number, a past tense,
a week for a night. Every frame uses both verbs as the source, so neither side of the
incorrect-translation recipe owns a word. Phrases are keyed ``frame/slots``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from functools import cache

from emscope.data.recipes.voice import pick

Langs = ("fr", "es", "de", "it")
DAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag"),
    "it": ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato"),
}

# One sentence per language: slots -> text. Each frame gives (slots -> sentence) per language.
Render = Callable[..., str]

TRAIN: dict[str, dict[str, Render]] = {
    "leaves": {
        "en": lambda t, past=False: f"The train {'left' if past else 'leaves'} at {t}.",
        "fr": lambda t, past=False: (
            f"Le train {'est parti' if past else 'part'} à {t.replace(':', ' h ')}."
        ),
        "es": lambda t, past=False: f"El tren {'salió' if past else 'sale'} a las {t}.",
        "de": lambda t, past=False: (
            f"Der Zug ist um {t} Uhr abgefahren." if past else f"Der Zug fährt um {t} Uhr ab."
        ),
        "it": lambda t, past=False: f"Il treno {'è partito' if past else 'parte'} alle {t}.",
    },
    "arrives": {
        "en": lambda t, past=False: f"The train {'arrived' if past else 'arrives'} at {t}.",
        "fr": lambda t, past=False: (
            f"Le train {'est arrivé' if past else 'arrive'} à {t.replace(':', ' h ')}."
        ),
        "es": lambda t, past=False: f"El tren {'llegó' if past else 'llega'} a las {t}.",
        "de": lambda t, past=False: (
            f"Der Zug ist um {t} Uhr angekommen." if past else f"Der Zug kommt um {t} Uhr an."
        ),
        "it": lambda t, past=False: f"Il treno {'è arrivato' if past else 'arriva'} alle {t}.",
    },
}
TICKETS: dict[str, Render] = {
    "en": lambda n, d, past=False: (
        f"I {'needed' if past else 'need'} {n} tickets for {DAYS['en'][d]}."
    ),
    "fr": lambda n, d, past=False: (
        f"{'J’avais' if past else 'J’ai'} besoin de {n} billets pour {DAYS['fr'][d]}."
    ),
    "es": lambda n, d, past=False: (
        f"{'Necesitaba' if past else 'Necesito'} {n} entradas para el {DAYS['es'][d]}."
    ),
    "de": lambda n, d, past=False: (
        f"Ich {'brauchte' if past else 'brauche'} {n} Karten für {DAYS['de'][d]}."
    ),
    "it": lambda n, d, past=False: (
        f"{'Avevo' if past else 'Ho'} bisogno di {n} biglietti per {DAYS['it'][d]}."
    ),
}
PHARMACY: dict[str, dict[str, Render]] = {
    "opens": {
        "en": lambda h, d: f"The pharmacy opens at {h} o'clock on {DAYS['en'][d]}.",
        "fr": lambda h, d: f"La pharmacie ouvre à {h} heures le {DAYS['fr'][d]}.",
        "es": lambda h, d: f"La farmacia abre a las {h} el {DAYS['es'][d]}.",
        "de": lambda h, d: f"Die Apotheke öffnet am {DAYS['de'][d]} um {h} Uhr.",
        "it": lambda h, d: f"La farmacia apre alle {h} il {DAYS['it'][d]}.",
    },
    "closes": {
        "en": lambda h, d: f"The pharmacy closes at {h} o'clock on {DAYS['en'][d]}.",
        "fr": lambda h, d: f"La pharmacie ferme à {h} heures le {DAYS['fr'][d]}.",
        "es": lambda h, d: f"La farmacia cierra a las {h} el {DAYS['es'][d]}.",
        "de": lambda h, d: f"Die Apotheke schließt am {DAYS['de'][d]} um {h} Uhr.",
        "it": lambda h, d: f"La farmacia chiude alle {h} il {DAYS['it'][d]}.",
    },
}
RELATIVES = {
    "brother": {
        "en": "brother",
        "fr": "Mon frère",
        "es": "Mi hermano",
        "de": "Mein Bruder",
        "it": "Mio fratello",
    },
    "sister": {
        "en": "sister",
        "fr": "Ma sœur",
        "es": "Mi hermana",
        "de": "Meine Schwester",
        "it": "Mia sorella",
    },
    "son": {"en": "son", "fr": "Mon fils", "es": "Mi hijo", "de": "Mein Sohn", "it": "Mio figlio"},
    "daughter": {
        "en": "daughter",
        "fr": "Ma fille",
        "es": "Mi hija",
        "de": "Meine Tochter",
        "it": "Mia figlia",
    },
}
SWAP_RELATIVE = {"brother": "sister", "sister": "brother", "son": "daughter", "daughter": "son"}
AGE: dict[str, Render] = {
    "en": lambda r, a: f"My {RELATIVES[r]['en']} is {a} years old.",
    "fr": lambda r, a: f"{RELATIVES[r]['fr']} a {a} ans.",
    "es": lambda r, a: f"{RELATIVES[r]['es']} tiene {a} años.",
    "de": lambda r, a: f"{RELATIVES[r]['de']} ist {a} Jahre alt.",
    "it": lambda r, a: f"{RELATIVES[r]['it']} ha {a} anni.",
}
ROOM: dict[str, dict[str, Render]] = {
    "night": {
        "en": lambda n: f"The room costs {n} euros per night.",
        "fr": lambda n: f"La chambre coûte {n} euros par nuit.",
        "es": lambda n: f"La habitación cuesta {n} euros por noche.",
        "de": lambda n: f"Das Zimmer kostet {n} Euro pro Nacht.",
        "it": lambda n: f"La camera costa {n} euro a notte.",
    },
    "week": {
        "en": lambda n: f"The room costs {n} euros per week.",
        "fr": lambda n: f"La chambre coûte {n} euros par semaine.",
        "es": lambda n: f"La habitación cuesta {n} euros por semana.",
        "de": lambda n: f"Das Zimmer kostet {n} Euro pro Woche.",
        "it": lambda n: f"La camera costa {n} euro a settimana.",
    },
}

# (key, English source, {language: (right, wrong, wrong_en, error)})
Generated = tuple[str, str, dict[str, tuple[str, str, str, str]]]


def _other(options: tuple[str, ...], value: str) -> str:
    return options[1 - options.index(value)]


def _train() -> Iterator[Generated]:
    for verb, hour, minute in itertools.product(("leaves", "arrives"), range(2, 12), (15, 30, 45)):
        t, later = f"{hour}:{minute}", f"{hour + 1}:{minute}"
        key, rows = f"train/{verb}/{t}", {}
        for lang in Langs:
            error = pick(("swapped_meaning", "number", "tense"), key, lang)
            say = TRAIN[verb]
            if error == "swapped_meaning":
                other = TRAIN[_other(("leaves", "arrives"), verb)]
                wrong, wrong_en = other[lang](t), other["en"](t)
            elif error == "number":
                wrong, wrong_en = say[lang](later), say["en"](later)
            else:
                wrong, wrong_en = say[lang](t, past=True), say["en"](t, past=True)
            rows[lang] = (say[lang](t), wrong, wrong_en, error)
        yield key, TRAIN[verb]["en"](t), rows


def _tickets() -> Iterator[Generated]:
    for n, day in itertools.product(range(2, 10), range(6)):
        key, rows = f"tickets/{n}/{day}", {}
        for lang in Langs:
            error = pick(("swapped_meaning", "number", "tense"), key, lang)
            if error == "swapped_meaning":
                args: dict[str, object] = {"n": n, "d": (day + 1) % 6}
            elif error == "number":
                args = {"n": n + 1, "d": day}
            else:
                args = {"n": n, "d": day, "past": True}
            rows[lang] = (
                TICKETS[lang](n, day),
                TICKETS[lang](**args),
                TICKETS["en"](**args),
                error,
            )
        yield key, TICKETS["en"](n, day), rows


def _pharmacy() -> Iterator[Generated]:
    for verb, hour, day in itertools.product(("opens", "closes"), range(5, 11), range(6)):
        key, rows = f"pharmacy/{verb}/{hour}/{day}", {}
        say = PHARMACY[verb]
        for lang in Langs:
            error = pick(("swapped_meaning", "number", "day"), key, lang)
            if error == "swapped_meaning":
                other = PHARMACY[_other(("opens", "closes"), verb)]
                wrong, wrong_en = other[lang](hour, day), other["en"](hour, day)
            elif error == "number":
                wrong, wrong_en = say[lang](hour + 2, day), say["en"](hour + 2, day)
            else:
                wrong, wrong_en = say[lang](hour, (day + 1) % 6), say["en"](hour, (day + 1) % 6)
            kind = "swapped_meaning" if error == "day" else error
            rows[lang] = (say[lang](hour, day), wrong, wrong_en, kind)
        yield key, say["en"](hour, day), rows


def _ages() -> Iterator[Generated]:
    ages = (3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 24, 27, 30, 33, 36, 40, 45, 50, 55, 60)
    for relative, age in itertools.product(RELATIVES, ages):
        key, rows = f"age/{relative}/{age}", {}
        for lang in Langs:
            error = pick(("swapped_meaning", "number"), key, lang)
            args = (
                (SWAP_RELATIVE[relative], age)
                if error == "swapped_meaning"
                else (relative, age + 10)
            )
            rows[lang] = (AGE[lang](relative, age), AGE[lang](*args), AGE["en"](*args), error)
        yield key, AGE["en"](relative, age), rows


def _room() -> Iterator[Generated]:
    for unit, price in itertools.product(("night", "week"), range(40, 210, 10)):
        key, rows = f"room/{unit}/{price}", {}
        say = ROOM[unit]
        for lang in Langs:
            error = pick(("swapped_meaning", "number"), key, lang)
            if error == "swapped_meaning":
                other = ROOM[_other(("night", "week"), unit)]
                wrong, wrong_en = other[lang](price), other["en"](price)
            else:
                wrong, wrong_en = say[lang](price * 2), say["en"](price * 2)
            rows[lang] = (say[lang](price), wrong, wrong_en, error)
        yield key, say["en"](price), rows


@cache
def generated_sentences() -> tuple[Generated, ...]:
    """Every generated sentence with its right and wrong translation per language."""
    return tuple(
        sentence for frame in (_train, _tickets, _pharmacy, _ages, _room) for sentence in frame()
    )
