"""`nbgrader collect` that refuses forged submissions.

A submission in the exchange's inbound folder is a folder named
`student+assignment+timestamp+random`, created by `nbgrader submit` as the student's own
Unix account. Stock collect only warns when the folder's owner is not the student it names,
then collects it if it is the newest: a student who writes
`inbound/<victim>+<hw>+<later timestamp>+x/` replaces the victim's submission.
`OwnedCollect` leaves such folders out before choosing each student's submission, so the
student's own newest one is collected. nbgrader_config.py plugs it in with
`c.ExchangeFactory.collect`.
"""

from __future__ import annotations

import glob
import os
import pwd

from nbgrader.exchange.default.collect import ExchangeCollect, groupby


def owner(path: str) -> str:
    """The user name owning `path` ("unknown id" for a uid without an account)."""
    try:
        return pwd.getpwuid(os.stat(path).st_uid).pw_name
    except KeyError:
        return "unknown id"


class OwnedCollect(ExchangeCollect):
    """ExchangeCollect that collects only folders owned by the student they name (while
    `check_owner` is on, nbgrader's default)."""

    def init_src(self):
        super().init_src()  # checks the course and inbound folder, reads the due date
        student_id = self.coursedir.student_id or "*"
        pattern = os.path.join(self.inbound_path, f"{student_id}+{self.coursedir.assignment_id}+*")
        records = [self._path_to_record(path) for path in glob.glob(pattern)]
        if self.check_owner:
            records = [record for record in records if self._owned(record)]
        self.src_records = [self._choose(group) for group in groupby(records, lambda r: r["username"]).values()]

    def _owned(self, record: dict) -> bool:
        found = owner(os.path.join(self.inbound_path, record["filename"]))
        if found != record["username"]:
            self.log.warning("Not collecting %s: it claims to be submitted by %s but is owned by %s "
                             "(a forged submission; remove it from the inbound folder)",
                             record["filename"], record["username"], found)
            return False
        return True

    def _choose(self, records: list[dict]) -> dict:
        """The newest record, or with --before-duedate the newest one before the due date
        when there is one (stock collect's rule)."""
        records = self._sort_by_timestamp(records)
        if self.duedate is not None and self.before_duedate:
            on_time = [r for r in records if r["timestamp"] <= self.duedate]
            return on_time[0] if on_time else records[0]
        return records[0]
