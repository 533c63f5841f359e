"""The demo store: a realistic, reproducible customer base for trying playbooks.

Why it looks the way it does:

- Everything is placed relative to ``as_of`` (activity, contacts, maturities, birthdays), so a
  dry run "for today" always finds customers to act on, whatever day it is.
- The data is a pure function of ``(customers, seed, as_of)``: each block of 1,000 customers
  draws from its own ``random.Random`` seeded by ``(seed, block)``, so neither the chunk size
  nor the database changes a single value. Rows are built as tuples of plain str / int /
  float, with dates and times already formatted the way SQLAlchemy stores them on SQLite;
  PostgreSQL parses the same text, so both backends hold the same data.
- A few scenarios the shipped playbooks target are planted on fixed customer positions
  rather than left to chance (a dormant VIP in every 100 customers, a Feb-29 birthday in
  every 1,000, a burst of large withdrawals in every 500, an ordinary and a serious overdue
  complaint and a visit the day before in every 1,000, a VIP whose fifth-year account
  anniversary is three days after ``as_of`` in every 1,000, for the anniversary gift task, and
  a customer who opened the day before in every 1,000, for the welcome message), so they exist
  at any size that can hold them. The later plants draw no random numbers, so they change no
  one else's data.
- Speed: 1M customers (about 25.6M rows) must load in minutes. The hot loop works on integer
  day / second offsets and precomputed string tables instead of datetime arithmetic, weighted
  picks are single lookups into expanded tables, rows go in by chunks through the raw DBAPI
  (``executemany`` on SQLite with journalling relaxed for the load, ``COPY`` on PostgreSQL),
  and secondary indexes are built once at the end.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import pickle
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager
from subprocess import DEVNULL, PIPE

from sqlalchemy import Engine

from engine.demo import names
from engine.demo.bulkload import (
    COLUMNS,
    Row,
    Rows,
    begin_bulk_load,
    drop_foreign_keys,
    finish_load,
    write_rows,
    writer_for,
)
from engine.store import schema
from engine.store.models import CUSTOMER_TABLES, metadata

CHUNK_SIZE = 10_000
"""Customers generated and inserted per transaction: bounds memory (a chunk is ~256k rows)."""
PARALLEL_FROM = 100_000
"""Customers from which generating in a second process pays for its start-up."""
WORKER = "from engine.demo.generator import _serve; _serve()"
"""What the second process runs (``python -c``)."""
BLOCK = 1_000
"""Customers per random stream; a chunk is a whole number of blocks."""

DAY = 86_400
# AUM quantile function: piecewise log-linear through (share of customers, AUM in yuan), which
# gives ~70% mass, 20% gold, 9% vip, 1% private with a long log-normal-like tail.
_AUM_KNOTS = ((0.0, 10.0), (0.12, 3_000.0), (0.70, 50_000.0), (0.90, 500_000.0),
              (0.99, 6_000_000.0), (1.0, 80_000_000.0))  # fmt: skip
CONSENT_CHANNELS = ("sms", "email", "phone")


def generate(
    engine: Engine,
    *,
    customers: int,
    seed: int = 7,
    as_of: dt.date,
    progress: bool = False,
) -> dict[str, int]:
    """(Re)create the demo store: drop every table of engine.store.models.metadata, create all,
    fill the customer tables. Returns row counts per table name."""
    if customers < 0:
        raise ValueError("customers must be >= 0")
    gen = _Generator(customers=customers, seed=seed, as_of=as_of)
    counts = {table.name: 0 for table in CUSTOMER_TABLES}
    secondary = [index for table in CUSTOMER_TABLES for index in table.indexes]
    with _progress_bar(progress, customers) as advance, engine.connect() as conn:
        writer = writer_for(conn)
        restore: Callable[[], None] | None = None
        try:
            # Dropped under the store's own journal: an in-memory one would grow with the old
            # store's size (by 0.6 GB for a 1M-customer store).
            metadata.drop_all(conn)
            metadata.create_all(conn)
            schema.stamp_head(conn)  # made from this release's models: the newest revision
            for index in secondary:  # built once at the end: far cheaper than row by row
                index.drop(conn)
            drop_foreign_keys(conn)
            conn.commit()
            restore = begin_bulk_load(conn)
            # Rows go in through the DBAPI connection, which SQLAlchemy does not see: so the
            # writer commits (one transaction per chunk keeps the journal small) and rolls back.
            write_rows(writer, gen.reference_rows(), counts)
            with closing(_chunks(gen, customers, seed, as_of)) as chunks:
                for size, rows in chunks:
                    write_rows(writer, rows, counts)
                    advance(size)
            advance(0, "demo store: indexes")
            finish_load(conn, secondary)
        except BaseException:
            writer.rollback()
            conn.rollback()
            raise
        finally:
            if restore is not None:
                restore()
    return counts


def _chunks(
    gen: _Generator, customers: int, seed: int, as_of: dt.date
) -> Generator[tuple[int, Rows], None, None]:
    """(customer count, rows) per chunk. From PARALLEL_FROM customers on, a second Python
    generates the next chunk while this one inserts: the two halves of the work cost about the
    same, and this machine has two cores. A plain subprocess rather than multiprocessing:
    spawn re-runs the caller's main script (unguarded scripts would recurse) and fork copies a
    process holding a database connection and maybe threads."""
    bounds = [(a, min(a + CHUNK_SIZE, customers)) for a in range(0, customers, CHUNK_SIZE)]
    if customers < PARALLEL_FROM:
        for start, stop in bounds:
            yield stop - start, gen.chunk(start, stop)
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    job = [str(customers), str(seed), as_of.isoformat(), str(CHUNK_SIZE)]
    command = [sys.executable, "-c", WORKER, *job]
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(command, stdin=DEVNULL, stdout=PIPE, stderr=errors, env=env) as worker,
    ):
        assert worker.stdout is not None
        _widen_pipe(worker.stdout.fileno())
        try:
            for start, stop in bounds:
                try:  # the pipe holds the worker one chunk ahead: memory stays bounded
                    rows: Rows = pickle.load(worker.stdout)
                except (EOFError, pickle.UnpicklingError):
                    worker.wait()
                    errors.seek(0)
                    tail = errors.read()[-2_000:].decode(errors="replace").strip()
                    raise RuntimeError(
                        f"the demo data process stopped (exit code {worker.returncode}): {tail}"
                    ) from None
                yield stop - start, rows
        finally:
            if worker.poll() is None:  # stopped early: it would wait on the pipe forever
                worker.kill()


def _widen_pipe(fd: int) -> None:
    """A chunk is ~8 MB of pickle: through the default 64 KiB pipe that is over a hundred
    hand-overs between the processes, each a wait for the scheduler on a busy machine."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)  # the unprivileged maximum, by default
    except (ImportError, AttributeError, OSError):  # not Linux, or not allowed: just slower
        pass


def _serve() -> None:
    """The generating process: the job in argv, pickled chunks on stdout, in order. Our own
    child, so unpickling what it sends is safe."""
    customers, seed, as_of, size = sys.argv[1:]
    n = int(customers)
    gen = _Generator(customers=n, seed=int(seed), as_of=dt.date.fromisoformat(as_of))
    for start in range(0, n, int(size)):
        chunk = gen.chunk(start, min(start + int(size), n))
        pickle.dump(chunk, sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)
    sys.stdout.buffer.flush()


@contextmanager
def _progress_bar(show: bool, total: int) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n, label=None)``: a rich bar on stderr when asked for, else a no-op."""
    if not show:
        yield lambda n, label=None: None
        return
    import rich.progress as rp
    from rich.console import Console

    columns: list[rp.ProgressColumn] = [rp.TextColumn("{task.description}"), rp.BarColumn()]
    columns += [rp.MofNCompleteColumn(), rp.TimeElapsedColumn(), rp.TimeRemainingColumn()]
    with rp.Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("demo store: customers", total=total)

        def advance(n: int, label: str | None = None) -> None:
            if label is not None:
                bar.update(task, description=label)
            bar.advance(task, n)

        yield advance


# --- generating ------------------------------------------------------------------------------


def _aum_cents(u: float) -> int:
    """AUM in cents for a uniform draw ``u``, through the piecewise log-linear quantiles."""
    for k in range(1, len(_AUM_KNOTS)):
        u1, a1 = _AUM_KNOTS[k]
        if u < u1 or k == len(_AUM_KNOTS) - 1:
            u0, a0 = _AUM_KNOTS[k - 1]
            x = math.log(a0) + (math.log(a1) - math.log(a0)) * (u - u0) / (u1 - u0)
            return int(math.exp(x) * 100)
    raise AssertionError("unreachable")  # pragma: no cover


def _draw(r: Callable[[], float], buckets: tuple[tuple[float, int, int], ...]) -> int:
    """A whole number from the first (cumulative share, low, high) bucket a draw falls in."""
    x = r()
    for share, low, high in buckets:
        if x < share:
            return low + int(r() * (high - low + 1))
    raise AssertionError("the last bucket's share must be 1.0")  # pragma: no cover


class _Generator:
    """Turns (customers, seed, as_of) into rows, a chunk at a time.

    Time is kept as integers: a day is an index into ``days`` (ISO date strings from ``lo``
    on), a timestamp is seconds since ``lo`` 00:00 and formats as ``days[t // DAY] +
    times[t % DAY]``, the exact text SQLAlchemy writes for a DateTime on SQLite.
    """

    def __init__(self, *, customers: int, seed: int, as_of: dt.date) -> None:
        self.customers = customers
        self.seed = seed
        as_ord = as_of.toordinal()
        birth_hi = min(dt.date(2006, 12, 31).toordinal(), as_ord - 18 * 366)
        birth_lo = min(dt.date(1940, 1, 1).toordinal(), birth_hi - 50 * 365)
        lo = min(birth_lo, as_ord - 8_000)
        self.days = [dt.date.fromordinal(o).isoformat() for o in range(lo, as_ord + 2_000)]
        self.years = [int(day[:4]) for day in self.days]
        self.times = [
            f" {t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}.000000" for t in range(DAY)
        ]
        self.today = as_ord - lo  # day index of as_of
        self.birth_lo = birth_lo - lo
        self.birth_span = birth_hi - birth_lo + 1
        self.feb29 = [
            dt.date(y, 2, 29).toordinal() - lo
            for y in range(self.years[self.birth_lo], self.years[birth_hi - lo] + 1)
            if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
        ]
        # First days of the last 12 months, newest first: (ISO date, days before as_of).
        self.months: list[tuple[str, int]] = []
        year, month = as_of.year, as_of.month
        for _ in range(12):
            first = dt.date(year, month, 1).toordinal()
            self.months.append((self.days[first - lo], as_ord - first))
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        rng = random.Random(f"demo:{seed}:reference")
        self.phone_rounds = [[int(rng.random() * 10_000) for _ in range(10_000)] for _ in range(4)]
        self._reference(rng)

    def _phone(self, k: int, r: random.Random) -> str:
        prefix = names.MOBILE_PREFIXES[int(r.random() * len(names.MOBILE_PREFIXES))]
        return f"{prefix}{self._scramble(k):08d}"

    def _scramble(self, k: int) -> int:
        """A bijection on [0, 10^8): a 4-round Feistel network over two 4-digit halves. Customer
        k and manager 10^8-1-j thus never share a number, with no set of 1M phones kept, and
        consecutive customers' numbers look unrelated."""
        left, right = divmod(k, 10_000)
        for table in self.phone_rounds:
            left, right = right, (left + table[right]) % 10_000
        return left * 10_000 + right

    def _anniversary_opening(self, age_days: int) -> int:
        """Days before as_of of an opening whose 5th, 10th, 15th or 20th anniversary (the
        longest that keeps the opening after the customer's 16th year) is three days after
        as_of. A target of 29 February takes the 20th: 20 years earlier is a leap year too."""
        as_of = dt.date.fromisoformat(self.days[self.today])
        target = as_of + dt.timedelta(days=3)
        years = 20
        if (target.month, target.day) != (2, 29):
            years = 5 * max(1, min(4, (age_days - 3 - 16 * 365) // (5 * 366)))
        return (as_of - target.replace(year=target.year - years)).days

    @staticmethod
    def _name(r: random.Random, male: bool) -> tuple[str, str]:
        surname, pinyin = names.SURNAME_TABLE[int(r.random() * len(names.SURNAME_TABLE))]
        chars = names.MALE_CHARS if male else names.FEMALE_CHARS
        for _ in range(1 if r.random() < 0.3 else 2):
            char, sound = chars[int(r.random() * len(chars))]
            surname, pinyin = surname + char, pinyin + sound
        return surname, pinyin

    def _reference(self, rng: random.Random) -> None:
        """Branches (~1 per 5,000 customers) and managers (~1 per 400), each branch staffed
        with at least a manager, a senior manager and a branch leader."""
        n_branches = max(3, round(self.customers / 5_000))
        n_managers = max(3 * n_branches, round(self.customers / 400))
        cities, areas = names.CITIES, names.BRANCH_AREAS
        self.branch_rows: list[Row] = []
        self.manager_rows: list[Row] = []
        self.branch_managers: list[list[str]] = []  # role 'manager': customers' own RMs
        self.branch_staff: list[list[str]] = []  # every role: who may have made a contact
        for b in range(n_branches):
            branch_id = f"B{b + 1:04d}"
            # (city, area) pairs are unique within each run of 16 x 24 branches (with b = 16k + c,
            # the area is (17k + c) mod 24, and 17 is a unit mod 24); later runs get 第二, 第三 …
            k = b // len(cities)
            run = b // (len(cities) * len(areas))
            ordinal = names.ORDINALS[run] if run < len(names.ORDINALS) else f"{run + 1}号"
            name = f"{areas[(k + b) % len(areas)]}{ordinal}支行"
            self.branch_rows.append((branch_id, name, cities[b % len(cities)]))
            own: list[str] = []
            staff: list[str] = []
            for slot in range(n_managers // n_branches + (b < n_managers % n_branches)):
                j = len(self.manager_rows)
                manager_id = f"M{j + 1:06d}"
                if slot == 0:
                    role = "branch_leader"
                elif slot % 5 == 1:
                    role = "senior_manager"
                else:
                    role = "manager"
                    own.append(manager_id)
                staff.append(manager_id)
                name, pinyin = self._name(rng, rng.random() < 0.55)
                phone = self._phone(99_999_999 - j, rng)
                email = f"{pinyin}.{j + 1}@{names.MANAGER_EMAIL_DOMAIN}"
                self.manager_rows.append((manager_id, name, phone, email, role, branch_id))
            self.branch_managers.append(own)
            self.branch_staff.append(staff)

    def reference_rows(self) -> Rows:
        return {"branches": self.branch_rows, "managers": self.manager_rows}

    def chunk(self, start: int, stop: int) -> Rows:
        """Rows of every customer table for customers ``start`` (inclusive) to ``stop``.

        One long loop on purpose: this runs a million times, and locals plus inlined
        arithmetic are what keep it at tens of microseconds per customer.
        """
        assert start % BLOCK == 0, "chunks must start on a block boundary"
        rng = random.Random()
        r = rng.random
        days, times, years, today = self.days, self.times, self.years, self.today
        now = today * DAY  # as_of 00:00 as an absolute second
        n_branches = len(self.branch_rows)
        scramble = self._scramble
        prefixes, domains = names.MOBILE_PREFIXES, names.EMAIL_DOMAINS
        out: Rows = {table: [] for table in COLUMNS}
        customers, tags, holdings = out["customers"], out["customer_tags"], out["holdings"]
        transactions, snapshots = out["transactions"], out["aum_snapshots"]
        contacts, complaints, consents = out["contacts"], out["complaints"], out["consents"]

        def fmt(t: int) -> str:
            return days[t // DAY] + times[t % DAY]

        for i in range(start, stop):
            if i % BLOCK == 0:
                rng.seed(f"demo:{self.seed}:{i // BLOCK}")
            cid = f"C{i + 1:010d}"
            # Planted scenarios, by position so that they exist at every size (see module doc).
            dormant_vip = i % 100 == 42
            burst = i % 500 == 250
            overdue = i % 1000 == 700
            gift = i % 1000 == 600
            fresh = i % 1000 == 900

            # --- who they are
            male = r() < 0.49
            if i % 1000 == 500:
                born = self.feb29[int(r() * len(self.feb29))]
            else:  # the sum of two uniforms: most customers middle-aged, few very old
                born = self.birth_lo + int((r() + r()) * 0.5 * self.birth_span)
            age_days = today - born
            age = age_days // 365
            byear = years[born]
            name, pinyin = self._name(rng, male)
            lunar_share = 0.40 if byear < 1960 else 0.15 if byear < 1975 else 0.04
            birthday_calendar = "lunar" if r() < lunar_share else "solar"
            phone = f"{prefixes[int(r() * len(prefixes))]}{scramble(i):08d}"
            email = None
            if r() < (0.3 if age >= 65 else 0.66):
                domain = domains[int(r() * 3)]
                email = f"{pinyin}{byear % 100:02d}{int(r() * 1000)}@{domain}"

            # --- wealth
            u = r()
            if dormant_vip or gift:
                u = 0.905 + 0.08 * r()
            elif burst:
                u = 0.82 + 0.15 * r()
            elif age < 25:
                u *= 0.9
            cents = _aum_cents(u)
            tier = ("mass" if cents < 5_000_000 else "gold" if cents < 50_000_000 else
                    "vip" if cents < 600_000_000 else "private")  # fmt: skip
            vipish = cents >= 50_000_000
            if age >= 60 and r() < 0.8:
                occupation = "退休"
            elif age < 23 and r() < 0.6:
                occupation = "学生"
            elif vipish and r() < 0.5:
                occupation = names.WEALTHY_OCCUPATIONS[int(r() * 6)]
            else:
                occupation = names.OCCUPATION_TABLE[int(r() * len(names.OCCUPATION_TABLE))]
            risk = (names.RISK_TABLE_OLD if age >= 60 else names.RISK_TABLE)[int(r() * 100)]

            # --- history: days before as_of
            planted = dormant_vip or burst or overdue
            opened = 365 + int(r() * 6936) if planted else _draw(r, names.OPENED_DAYS)
            if opened > age_days - 16 * 365:  # nobody opens an account before 16
                opened = 365 + int(r() * (age_days - 17 * 365))
            if gift:
                opened = self._anniversary_opening(age_days)
            elif fresh:
                opened = 1
            if burst:
                idle = 1 + int(r() * 2)
            elif dormant_vip:
                idle = 61 + int(r() * 90)
            else:
                idle = _draw(r, names.IDLE_DAYS_VIP if vipish else names.IDLE_DAYS)
            if idle > opened:
                idle = 1 + int(r() * opened)
            last_active = (today - idle) * DAY + 25_200 + int(r() * 54_000)  # 07:00-22:00
            if opened < 90:
                stage = "new"
            elif idle > 365:
                stage = "churned"
            elif idle > 180:
                stage = "dormant"
            else:
                stage = "growth" if opened < 1095 else "mature"

            b = int(r() * n_branches)
            own = self.branch_managers[b]
            manager = own[int(r() * len(own))]
            channel = (names.CHANNEL_TABLE_VIP if vipish else names.CHANNEL_TABLE)[int(r() * 100)]
            if channel == "email" and email is None:
                channel = "sms"
            level = {"mass": 1, "gold": 2, "vip": 3, "private": 4}[tier] + (r() < 0.5)
            customers.append((
                cid, name, "M" if male else "F", days[born], birthday_calendar, phone, email,
                self.branch_rows[b][0], manager, tier, cents / 100,
                int(cents * (0.05 + 0.85 * r())) / 100, risk, occupation, days[today - opened],
                fmt(last_active), stage, level, channel,
            ))  # fmt: skip

            # --- tags
            if 18 <= age < 60 and occupation != "退休" and r() < 0.3:
                tags.append((cid, "代发工资"))
            if 25 <= age < 65 and r() < 0.15:
                tags.append((cid, "房贷客户"))
            if age >= 60 and (occupation == "退休" or r() < 0.3):
                tags.append((cid, "养老金"))
            if cents >= 100_000_000:
                tags.append((cid, "高净值"))
            if not dormant_vip and (
                (stage == "churned" and r() < 0.7) or (stage == "dormant" and r() < 0.15)
            ):
                tags.append((cid, "已流失"))
            if r() < 0.2:
                tags.append((cid, "信用卡客户"))
            if occupation in ("私营企业主", "个体工商户") and r() < 0.5:
                tags.append((cid, "小微企业主"))

            # --- holdings: the AUM split exactly, a demand account first
            counts = names.HOLDING_COUNT[tier]
            k = counts[int(r() * 100)]
            weights = [0.2 + r() for _ in range(k)]
            total = sum(weights)
            parts = [int(cents * w / total) for w in weights[1:]]
            holdings.append((
                cid, "demand_deposit", "活期储蓄", (cents - sum(parts)) / 100,
                days[today - opened], None,
            ))  # fmt: skip
            for amount in parts:
                kind = names.PRODUCT_TABLE[int(r() * 100)]
                if kind == "time_deposit" or kind == "wealth":
                    terms = names.TIME_DEPOSITS if kind == "time_deposit" else names.WEALTH_PRODUCTS
                    product, term = terms[int(r() * len(terms))]
                    due = 1 + int(r() * 7) if r() < 0.06 else 1 + int(r() * term)
                    since = term - due
                    if since > opened:  # bought when the account was opened
                        since, due = opened, term - opened
                    holdings.append(
                        (cid, kind, product, amount / 100, days[today - since], days[today + due])
                    )
                else:
                    products = (
                        names.FUNDS if kind == "fund" else
                        names.INSURANCE if kind == "insurance" else names.BONDS
                    )  # fmt: skip
                    product = products[int(r() * len(products))]
                    since = int(r() * (opened + 1))
                    holdings.append((cid, kind, product, amount / 100, days[today - since], None))

            # --- transactions in the last 90 days, the newest being the last activity
            if idle <= 90:
                counts = names.TX_COUNT["mass" if tier == "mass" else "gold"]
                window = min(90, opened) - idle + 1
                for q in range(counts[int(r() * 100)] + 3 * burst):
                    if q == 0:
                        t = last_active
                    else:
                        t = (today - idle - int(r() * window)) * DAY + 25_200 + int(r() * 54_000)
                        if t > last_active:
                            t = last_active - 60 - int(r() * 3_600)
                    kind = names.TX_KIND_TABLE[int(r() * 100)]
                    amount = 1_000 + int(cents * (0.003 + 0.12 * r() * r()))
                    if burst and q >= 1:  # 3+ withdrawals of 50k+ within the last week
                        kind = "withdrawal"
                        t = (today - idle - int(r() * 4)) * DAY + 25_200 + int(r() * 54_000)
                        t = min(t, last_active - 60)
                        amount = 5_000_000 + int(r() * cents * 0.05)
                    elif kind == "withdrawal" and cents >= 10_000_000 and r() < 0.15:
                        amount = 5_000_000 + int(r() * cents * 0.1)
                    channel = names.TX_CHANNEL_TABLE[int(r() * 100)]
                    transactions.append((cid, fmt(t), kind, amount / 100, channel))

            # --- monthly AUM snapshots, walking back from today's AUM by -5% … +7% a month.
            # ~2% fell sharply in the last month: today's AUM and this month's snapshot are
            # both >= 30% below each of the two before (the 1st a "30 days ago" lands on).
            value = cents * (0.97 + 0.06 * r())
            drop = r() < 0.02
            for m, (month, back) in enumerate(self.months):
                if back > opened:
                    break
                snapshots.append((cid, month, int(value) / 100))
                if m == 0 and drop:
                    value *= 1.6 + 2.0 * r()
                else:
                    value /= 0.95 + 0.12 * r()

            # --- contacts by managers of the branch over the last year
            counts = names.CONTACT_COUNT[tier]
            n = counts[int(r() * len(counts))]
            if n:
                limit = min(364, opened)
                # some VIPs left uncontacted for 30 / 90 / 180+ days
                recent = _draw(r, names.LAST_CONTACT_DAYS_VIP) if vipish else 1 + int(r() * 364)
                if recent > limit:
                    recent = 1 + int(r() * limit)
                staff = self.branch_staff[b]
                for q in range(n):
                    back = recent if q == 0 else recent + int(r() * (limit - recent + 1))
                    t = (today - back) * DAY + 32_400 + int(r() * 36_000)  # 09:00-19:00
                    who = manager if r() < 0.8 else staff[int(r() * len(staff))]
                    contacts.append((
                        cid, who, fmt(t), names.CONTACT_CHANNEL_TABLE[int(r() * 100)],
                        names.OUTCOME_TABLE[int(r() * 100)],
                    ))  # fmt: skip
            if i % 1000 == 600:  # a visit that reached the customer yesterday (no draws)
                contacts.append((cid, manager, fmt((today - 1) * DAY + 54_000), "visit", "reached"))

            # --- complaints (~1%), due 1-15 days after opening by severity
            if r() < 0.01 or overdue:
                category = names.COMPLAINT_CATEGORY_TABLE[int(r() * 100)]
                severity, due_days = names.SEVERITY_TABLE[int(r() * 100)]
                if overdue and (severity in ("high", "critical") or category == "fraud"):
                    # the planted one is ordinary; the serious one is planted below
                    category, severity, due_days = "service", "medium", 7
                limit = min(365, opened)
                back = min(limit, due_days + 1 + int(r() * 30)) if overdue else 1 + int(r() * limit)
                t = (today - back) * DAY + 32_400 + int(r() * 39_600)
                resolved = t + 3_600 + int(r() * due_days * DAY * 1.3)
                complaints.append((
                    cid, category, severity, fmt(t), fmt(t + due_days * DAY),
                    None if overdue or resolved >= now or r() < 0.1 else fmt(resolved),
                ))  # fmt: skip
            if i % 1000 == 300 and opened > 4:
                # A serious complaint a day past its deadline (fraud / high, or critical), for the
                # hourly branch-leader escalation. No draws: the rest of the block is unchanged.
                category, severity, due_days = (
                    ("fraud", "high", 3) if i // 1000 % 2 else ("service", "critical", 1)
                )
                t = (today - due_days - 1) * DAY + 36_000  # 10:00
                complaints.append((cid, category, severity, fmt(t), fmt(t + due_days * DAY), None))

            # --- consents, given when the account was opened; ~5% of marketing ones withdrawn
            signed = (today - opened) * DAY + 32_400 + int(r() * 28_800)
            given = fmt(signed)
            for medium in CONSENT_CHANNELS:
                reachable = email is not None or medium != "email"
                if reachable and r() < 0.85:
                    withdrawn = None
                    if r() < 0.068:
                        withdrawn = fmt(signed + 60 + int(r() * (now - signed - 120)))
                    consents.append((cid, medium, "marketing", given, withdrawn))
                else:
                    consents.append((cid, medium, "marketing", None, None))
                service = given if reachable and r() < 0.97 else None
                consents.append((cid, medium, "service", service, None))
        return out
