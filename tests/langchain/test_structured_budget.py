"""Structured output is valid when it ends, whatever the budget, on default settings.

Forty everyday extractions (nested objects, arrays of objects, enums, bounded numbers,
optional fields) through ``FuriosaChat(temperature=0, max_tokens=N)
.with_structured_output(...)`` at 64, 128 and 256 tokens, nothing else tuned: every
result is an instance of its schema, and those the budget cut report
``finish_reason="length"``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from furiosa_integrations import FuriosaChat
from furiosa_integrations.engine import AsyncEngine
from tests.engine_checks import wait_idle

pytestmark = pytest.mark.models


class Person(BaseModel):
    name: str
    age: int = Field(ge=0, le=130)
    email: str | None = None


class Address(BaseModel):
    street: str
    city: str
    country: str


class Customer(BaseModel):
    name: str
    address: Address


class Item(BaseModel):
    sku: str
    quantity: int = Field(ge=1)


class Order(BaseModel):
    items: list[Item]
    status: Literal["new", "paid", "shipped"]


class Event(BaseModel):
    title: str
    date: str
    attendees: list[str]


class Product(BaseModel):
    name: str
    price: float = Field(gt=0)
    tags: list[str]
    in_stock: bool


class Ingredient(BaseModel):
    name: str
    amount: float
    unit: Literal["g", "ml", "piece", "cup"]


class Recipe(BaseModel):
    name: str
    ingredients: list[Ingredient]
    steps: list[str]


class Movie(BaseModel):
    title: str
    year: int = Field(ge=1900, le=2030)
    genres: list[Literal["drama", "comedy", "action", "horror", "sci-fi"]]


class Point(BaseModel):
    x: float
    y: float


class Chart(BaseModel):
    title: str
    points: list[Point]


class Weather(BaseModel):
    city: str
    temperature_c: float = Field(ge=-90, le=60)
    conditions: Literal["sunny", "cloudy", "rain", "snow"]


class Task(BaseModel):
    title: str
    priority: Literal["low", "medium", "high"]
    due: str | None = None
    subtasks: list[str]


class Team(BaseModel):
    name: str
    members: list[Person]


class Line(BaseModel):
    description: str
    amount: float


class Invoice(BaseModel):
    number: str
    lines: list[Line]
    total: float


class Review(BaseModel):
    rating: int = Field(ge=1, le=5)
    pros: list[str]
    cons: list[str]


class Flight(BaseModel):
    origin: str
    destination: str
    duration_minutes: int = Field(ge=1)


class Book(BaseModel):
    title: str
    author: str
    pages: int = Field(ge=1)
    isbn: str | None = None


class Meeting(BaseModel):
    topic: str
    participants: list[str]
    minutes: int = Field(ge=1, le=480)


class Payment(BaseModel):
    amount: float
    currency: Literal["EUR", "USD", "KRW", "JPY"]
    category: str


class Game(BaseModel):
    home: str
    away: str
    home_score: int = Field(ge=0)
    away_score: int = Field(ge=0)


CASES: list[tuple[type[BaseModel], str]] = [
    (Person, "Maria Lopez is 34; write to maria@example.com."),
    (Person, "The new intern, Tom, just turned 19."),
    (Customer, "Ship to Jane Roe, 12 Harbour Road, Bergen, Norway."),
    (Customer, "Customer: Ali Kaya, living at Istiklal Street 5 in Istanbul, Turkey."),
    (Order, "Two boxes of SKU A-100 and one of B-200; the order is paid."),
    (Order, "New order: 5 units of pencil-07."),
    (Event, "Launch party on 2026-03-14 with Ann, Bo and Cem."),
    (Event, "Team offsite, May 2nd, attended by Dana and Eli."),
    (Product, "The Trail Mug costs 12.50, it is in stock, tags: camping, steel."),
    (Product, "Desk lamp, 39 dollars, out of stock, tagged office."),
    (Recipe, "Pancakes: 200 g flour, 300 ml milk, 2 eggs. Mix, then fry."),
    (Recipe, "Tea: 1 cup water and 2 g leaves; boil the water, steep three minutes."),
    (Movie, "Alien (1979) is a sci-fi horror film."),
    (Movie, "The 2014 comedy-drama The Grand Budapest Hotel."),
    (Chart, "Plot 'Growth' with points (1, 2), (2, 4) and (3, 8)."),
    (Chart, "A chart called Temperatures: (0, 15.5) and (6, 21)."),
    (Weather, "Oslo: 4 degrees and snowing."),
    (Weather, "It is 31 C and sunny in Seville."),
    (Task, "High priority: file the tax return by Friday; gather receipts, fill form."),
    (Task, "Low priority chore: water the plants."),
    (Team, "Team Apollo: Ann (29) and Ben (41)."),
    (Team, "The night shift is just Carl, who is 52."),
    (Invoice, "Invoice INV-7: consulting 500, travel 120.5; total 620.5."),
    (Invoice, "Bill no. 2026-01 for one website, 1500 euros in total."),
    (Review, "4 stars: great battery and screen, but heavy."),
    (Review, "Terrible, 1 star. Broke after a day; nothing good to say."),
    (Flight, "Seoul to Tokyo, 2 hours 25 minutes."),
    (Flight, "The hop from Oslo to Bergen takes 55 minutes."),
    (Book, "Dune by Frank Herbert, 412 pages, ISBN 978-0441013593."),
    (Book, "A 96-page poetry book, Morning Light, by Lee Park."),
    (Meeting, "Budget review with Sam and Kim, one hour."),
    (Meeting, "Quick 15 minute sync about hiring with Jo."),
    (Payment, "Paid 25,000 KRW for a taxi."),
    (Payment, "Groceries: 63.20 EUR."),
    (Game, "Arsenal beat Chelsea 2-1 at home."),
    (Game, "Away side Lakers won 101 to 99 against the Celtics."),
    (Person, "Dr. Amara Okafor, aged 45."),
    (Order, "Shipped: 3 x SKU Z9 and 1 x SKU Q1."),
    (Product, "A 2.99 pack of gum, in stock, tags: snack, mint."),
    (Task, "Medium priority: plan the trip, due 2026-07-01; book hotel, buy tickets."),
]


@pytest.mark.parametrize(
    ("max_tokens", "method"),
    [(64, "json_schema"), (128, "function_calling"), (256, "json_schema")],
)
async def test_every_structured_result_validates(
    chat_engine: AsyncEngine, max_tokens: int, method: Any
) -> None:
    chat = FuriosaChat(temperature=0, max_tokens=max_tokens)
    runs = [
        chat.with_structured_output(schema, method=method, include_raw=True) for schema, _ in CASES
    ]
    results = await _all(runs, [f"Extract the data. {text}" for _, text in CASES])
    cut = 0
    for (schema, text), result in zip(CASES, results, strict=True):
        assert result["parsing_error"] is None, (text, result["raw"])
        assert isinstance(result["parsed"], schema), (text, result["raw"])
        if result["raw"].response_metadata.get("finish_reason") == "length":
            cut += 1
    assert cut < len(CASES)  # most extractions end on their own
    await wait_idle(chat_engine)


async def _all(runs: list[Any], inputs: list[str]) -> list[dict[str, Any]]:
    calls = (run.ainvoke(text) for run, text in zip(runs, inputs, strict=True))
    return list(await asyncio.gather(*calls))
