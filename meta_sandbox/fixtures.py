"""Deterministic test users, businesses, ad accounts, pages and WhatsApp accounts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from .catalogue import (
    ACCOUNT_WORDS,
    BUSINESS_BASE,
    BUSINESS_NAMES,
    CLIENT_ACCOUNT_BASE,
    DISABLE_REASON,
    EXTERNAL_BUSINESS_BASE,
    INSTAGRAM_BASE,
    MONEY,
    OWNED_ACCOUNT_BASE,
    PAGE_BASE,
    PAGE_TASKS,
    PERSONAL_ACCOUNT_BASE,
    PHONE_BASE,
    STATUS_CYCLE,
    WABA_BASE,
)
from .config import accounts_for_business

# App-scoped ids of the test users (numeric strings, as Meta's).
USER_WITH_BUSINESSES = "10160000000000001"
USER_WITHOUT_BUSINESSES = "10160000000000002"
USER_WITHOUT_ASSETS = "10160000000000003"

_USERS = (
    (USER_WITH_BUSINESSES, "María José", "Fernández"),
    (USER_WITHOUT_BUSINESSES, "Joaquín", "Núñez"),
    (USER_WITHOUT_ASSETS, "Lucía", "Peña"),
)

@dataclass
class Fixtures:
    """Every object by Graph id, plus who can see what."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: list[str] = field(default_factory=list)
    user_businesses: dict[str, list[str]] = field(default_factory=dict)
    user_personal_accounts: dict[str, list[str]] = field(default_factory=dict)
    user_pages: dict[str, list[str]] = field(default_factory=dict)
    _access_cache: dict[tuple, dict[str, list[str]]] = field(default_factory=dict)

    def get(self, obj_id: str) -> dict[str, Any] | None:
        """The object with that id, or None."""
        return self.objects.get(obj_id)

    def user(self, user_id: str) -> dict[str, Any]:
        """A fixture user, or an asset-less synthetic one for any other numeric id."""
        obj = self.objects.get(user_id)
        if obj is None or obj["_type"] != "User":
            if not user_id.isdigit():
                raise ValueError("user ids are numeric strings")
            obj = _user(user_id, "Sandbox", f"User {user_id[-4:]}")
            self.objects[user_id] = obj
        return obj

    def access(self, user_id: str, business_ids: frozenset[str] | None = None) -> dict[str, list[str]]:
        """Ids the user can reach: businesses, ad_accounts (act_ ids), pages, wabas; only the
        shared businesses (and what they hold) when the grant names some."""
        cache_key = (user_id, business_ids)
        cached = self._access_cache.get(cache_key)
        if cached is not None:
            return cached
        businesses = [b for b in self.user_businesses.get(user_id, [])
                      if business_ids is None or b in business_ids]
        personal = list(self.user_personal_accounts.get(user_id, []))
        accounts = list(personal)
        wabas: list[str] = []
        for biz_id in businesses:
            biz = self.objects[biz_id]
            accounts.extend(biz["_owned_ad_accounts"] + biz["_client_ad_accounts"])
            wabas.extend(biz["_owned_wabas"] + biz["_client_wabas"])
        result = {
            "businesses": businesses,
            "ad_accounts": list(dict.fromkeys(accounts)),
            "personal_ad_accounts": personal,
            "pages": list(self.user_pages.get(user_id, [])),
            "wabas": wabas,
        }
        self._access_cache[cache_key] = result
        return result


def _user(user_id: str, first: str, last: str) -> dict[str, Any]:
    return {
        "_type": "User",
        "id": user_id,
        "name": f"{first} {last}",
        "first_name": first,
        "last_name": last,
        "short_name": first,
    }


def _ad_account(
    account_id: int, name: str, status: int, money: tuple, owner: dict[str, Any], rng
) -> dict[str, Any]:
    currency, tz_name, offset = money
    return {
        "_type": "AdAccount",
        "_business_id": owner["id"],
        "id": f"act_{account_id}",
        "account_id": str(account_id),
        "name": name,
        "account_status": status,
        "disable_reason": DISABLE_REASON.get(status, 0),
        "currency": currency,
        "timezone_name": tz_name,
        "timezone_offset_hours_utc": offset,
        "amount_spent": str(rng.randrange(0, 5_000_000)),
        "balance": "0",
        "spend_cap": "0",
        "created_time": f"20{rng.randrange(18, 26)}-0{rng.randrange(1, 10)}-1{rng.randrange(0, 10)}"
        "T10:00:00+0000",
        "business": {"_type": "BusinessRef", "id": owner["id"], "name": owner["name"]},
        "owner": owner["id"],
    }


class _Builder:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.rng = random.Random(config["seed"])
        self.fx = Fixtures()
        self.status_index = 0

    def status(self) -> int:
        value = STATUS_CYCLE[self.status_index % len(STATUS_CYCLE)]
        self.status_index += 1
        return value

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.fx.objects[obj["id"]] = obj
        return obj

    def money(self, home: int) -> tuple:
        # Mostly the business's home currency, sometimes another one.
        if self.rng.random() < 0.2:
            return self.rng.choice(MONEY)
        return MONEY[home % len(MONEY)]

    def business(self, index: int) -> dict[str, Any]:
        number = index + 1
        name = BUSINESS_NAMES[index % len(BUSINESS_NAMES)]
        if index >= len(BUSINESS_NAMES):
            name = f"{name} {number}"
        biz = self.add(
            {
                "_type": "Business",
                "id": str(BUSINESS_BASE + number),
                "name": name,
                "verification_status": "verified" if index % 2 == 0 else "not_verified",
                "created_time": f"20{18 + index % 7}-03-0{1 + index % 9}T09:30:00+0000",
                "updated_time": f"2026-0{1 + index % 9}-15T12:00:00+0000",
                "link": f"https://business.facebook.com/settings/?business_id={BUSINESS_BASE + number}",
                "_owned_ad_accounts": [],
                "_client_ad_accounts": [],
                "_owned_wabas": [],
                "_client_wabas": [],  # shared with the business by a client
                "_owned_pages": [],
            }
        )
        short = name.split()[0]
        count = accounts_for_business(self.config["ad_accounts_per_business"], index)
        for k in range(1, count + 1):
            word = ACCOUNT_WORDS[(k - 1) % len(ACCOUNT_WORDS)]
            acc = _ad_account(
                OWNED_ACCOUNT_BASE + number * 1_000_000 + k,
                f"{short} · {word} {k:03d}",
                self.status(),
                self.money(index),
                biz,
                self.rng,
            )
            biz["_owned_ad_accounts"].append(self.add(acc)["id"])
        agency = {"id": str(EXTERNAL_BUSINESS_BASE + number), "name": f"Agencia Externa {number}"}
        for k in range(1, self.config["client_ad_accounts_per_business"] + 1):
            acc = _ad_account(
                CLIENT_ACCOUNT_BASE + number * 1000 + k,
                f"Cliente {short} {k:02d}",
                self.status(),
                self.rng.choice(MONEY),
                agency,
                self.rng,
            )
            biz["_client_ad_accounts"].append(self.add(acc)["id"])
        return biz

    def build(self) -> Fixtures:
        fx = self.fx
        for user_id, first, last in _USERS:
            self.add(_user(user_id, first, last))
            fx.users.append(user_id)
        businesses = [self.business(i) for i in range(self.config["businesses"])]
        # A business's client accounts may include one the first business owns
        # (agency relationships overlap at Meta; listings must be de-duplicated).
        if len(businesses) > 1 and businesses[0]["_owned_ad_accounts"]:
            businesses[1]["_client_ad_accounts"].append(businesses[0]["_owned_ad_accounts"][0])
        fx.user_businesses[USER_WITH_BUSINESSES] = [b["id"] for b in businesses]
        if businesses:
            first = businesses[0]
            count = 1 + self.config["extra_phone_numbers"]
            phones = [str(PHONE_BASE + k) for k in range(1, count + 1)]
            waba = self.waba(first, 1, "Atención al cliente", phones)
            first["_owned_wabas"].append(waba["id"])
            for k in range(1, count + 1):
                self.add(
                    {
                        "_type": "PhoneNumber",
                        "_business_id": first["id"],
                        "id": str(PHONE_BASE + k),
                        "display_phone_number": f"+34 600 {k // 1000:03d} {k % 1000:03d}",
                        "verified_name": first["name"],
                        "quality_rating": ("GREEN", "YELLOW", "RED")[(k - 1) % 3],
                    }
                )
        if len(businesses) > 1:
            second = businesses[1]
            client = self.waba(second, 2, "Cliente WhatsApp", [])
            second["_client_wabas"].append(client["id"])
        self.pages(businesses)
        personal = []
        for k in range(1, self.config["personal_ad_accounts"] + 1):
            owner = {"id": USER_WITHOUT_BUSINESSES, "name": "Joaquín Núñez"}
            acc = _ad_account(
                PERSONAL_ACCOUNT_BASE + k,
                f"Joaquín Núñez {k:02d}",
                1 if k == 1 else self.status(),
                MONEY[(k + 2) % len(MONEY)],
                owner,
                self.rng,
            )
            del acc["business"]
            acc["_business_id"] = None
            personal.append(self.add(acc)["id"])
        fx.user_personal_accounts[USER_WITHOUT_BUSINESSES] = personal
        return fx

    def waba(self, business: dict[str, Any], n: int, label: str, phones: list[str]) -> dict[str, Any]:
        """The business's n-th WhatsApp Business account, in Meta's shape."""
        return self.add({
            "_type": "WhatsAppBusinessAccount", "_business_id": business["id"],
            "id": str(WABA_BASE + n), "name": f"{label} {business['name'].split()[0]}",
            "currency": "EUR", "timezone_id": "1", "message_template_namespace": f"sandbox_ns_{n:04d}",
            "account_review_status": "APPROVED", "_phone_numbers": phones,
        })

    def pages(self, businesses: list[dict[str, Any]]) -> None:
        specs = [(USER_WITH_BUSINESSES, b["name"].split(" S.")[0], b) for b in businesses[:2]]
        specs.append((USER_WITHOUT_BUSINESSES, "Joaquín Núñez Fotografía", None))
        specs += [(USER_WITH_BUSINESSES, f"Sucursal {k:03d}", businesses[0] if businesses else None)
                  for k in range(1, self.config["extra_pages"] + 1)]
        for n, (user_id, name, biz) in enumerate(specs, start=1):
            page = self.add(
                {
                    "_type": "Page",
                    "_business_id": biz["id"] if biz else None,
                    "id": str(PAGE_BASE + n),
                    "name": name,
                    "category": "Local business" if biz else "Photographer",
                    "category_list": [{"id": "2500", "name": "Local business"}],
                    "tasks": list(PAGE_TASKS),
                    "fan_count": 1000 * n + 17,
                    "link": f"https://www.facebook.com/{PAGE_BASE + n}",
                }
            )
            self.fx.user_pages.setdefault(user_id, []).append(page["id"])
            if biz:
                biz["_owned_pages"].append(page["id"])
                biz.setdefault("primary_page", page)  # Meta's Business.primary_page: a Page
            if n == 1 or n > 3:  # the first user's first Page (and extra ones) have Instagram
                page["instagram_business_account"] = self.add({
                    "_type": "InstagramAccount", "_page_id": page["id"],
                    "_business_id": page["_business_id"], "id": str(INSTAGRAM_BASE + n),
                    "username": name.lower().replace(" ", "_")[:30], "name": name,
                    "followers_count": 2400 + n})


def build_fixtures(config: dict[str, Any]) -> Fixtures:
    """Build the fixtures for the given settings (same settings, same data)."""
    return _Builder(config).build()
