"""The deterministic names, money and id ranges the sandbox's fixtures are drawn from: Spanish
and Latin-American businesses with accented names, eight currencies, every ad account status."""

from __future__ import annotations

BUSINESS_BASE = 2010000000000000  # business b (1-based) has id BUSINESS_BASE + b
EXTERNAL_BUSINESS_BASE = 2059000000000000
OWNED_ACCOUNT_BASE = 301000000000000
CLIENT_ACCOUNT_BASE = 305000000000000
PERSONAL_ACCOUNT_BASE = 309000000000000
PAGE_BASE = 1090000000000000
WABA_BASE = 1150000000000000
PHONE_BASE = 1160000000000000
INSTAGRAM_BASE = 17841400000000000  # Instagram professional account ids

BUSINESS_NAMES = (
    "Distribuidora Andina S.A.",
    "Café del Mañana S.L.",
    "Ñandú Digital Agencia",
    "Óptica Peñalara",
    "Librería Cervantes",
    "Panadería Doña Inés",
    "Turismo Patagónico",
    "Clínica San Martín",
)
ACCOUNT_WORDS = (
    "Campañas",
    "Búsqueda",
    "Remarketing",
    "Promociones",
    "Temporada",
    "Lanzamientos",
    "Marca",
    "Conversiones",
)
# (currency, timezone_name, timezone_offset_hours_utc)
MONEY = (
    ("EUR", "Europe/Madrid", 1),
    ("USD", "America/New_York", -5),
    ("MXN", "America/Mexico_City", -6),
    ("ARS", "America/Argentina/Buenos_Aires", -3),
    ("COP", "America/Bogota", -5),
    ("CLP", "America/Santiago", -3),
    ("BRL", "America/Sao_Paulo", -3),
    ("GBP", "Europe/London", 0),
)
# Half the accounts active; every other account_status value appears every 16 accounts.
STATUS_CYCLE = (1, 2, 1, 3, 1, 7, 1, 8, 1, 9, 1, 100, 1, 101, 1, 1)
DISABLE_REASON = {2: 1, 101: 0}
PAGE_TASKS = ["ANALYZE", "ADVERTISE", "MODERATE", "CREATE_CONTENT", "MANAGE"]
