"""Write corpus/demo/tracker.xlsx: a fictional partnership action tracker for the demo corpus.

It follows the cross-year story in corpus/demo/README.md so that, once the demo corpus is
ingested and this workbook imported (``kb tracker import corpus/demo/tracker.xlsx``), every
signal kind shows up:

* recurrence after action — Northmoor's fathers guidance and "Hidden Men" training (Child E,
  completed March 2020), then hidden men again in Child F (2021) and Child H (2022); Kingsbridge's
  domestic abuse notifications (Child Q and R, complete April 2022), then the embargoed Child Z;
* overdue — Child F and Child H actions still open past their due dates;
* no impact evidence — escalation reminders closed with nothing to show (Child B, Child E);
* déjà vu and rising come from the reviews themselves (the handover recommendation of Child D,
  F and H; injuries to babies in Easterby and Vale).

The layout is docs/TRACKER_FORMAT.md. Reviews are referenced by their manifest pseudonyms and
recommendation numbers. Run: ``.venv/bin/python corpus/demo/build_tracker.py``. All fictional.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font

HERE = Path(__file__).parent
OUT = HERE / "tracker.xlsx"

ACTIONS_HEADER = [
    "Ref", "Review", "Recommendation", "Themes", "Agency", "Owner", "Action", "Due date",
    "Status", "Completed", "Evidence of impact", "Impact rating",
]  # fmt: skip
D = date

# Ref, Review, Rec, Themes, Agency, Owner, Action, Due, Status, Completed, Evidence, Rating
ACTIONS = [
    ["NM-01", "Child B", "1", "neglect", "Children's Social Care", "Head of Early Help",
     "Adopt a multi-agency neglect strategy and roll out Graded Care Profile 2",
     D(2017, 3, 31), "Completed", D(2017, 9, 30),
     "2019 audit: GCP2 completed in 64% of neglect plans", "Some"],
    ["NM-02", "Child B", "3", "thresholds-procedures; professional-curiosity", "Partnership",
     "Business Manager", "Relaunch the escalation policy with a briefing for every agency",
     D(2017, 3, 31), "Closed", D(2017, 6, 30), None, None],
    ["NM-03", "Child B", "2", "was-not-brought", "Northmoor Health Providers",
     "Designated Nurse", "Replace 'did not attend' with 'was not brought' and follow up "
     "repeated missed appointments with the GP", D(2017, 6, 30), "Completed", D(2017, 5, 31),
     "2018 audit: repeated missed appointments followed up in 80% of cases", "Strong"],
    ["NM-04", "Child D", "1", "information-sharing; under-1s", "Maternity and Health Visiting",
     "Head of Midwifery", "Revised handover form listing every adult in the household",
     D(2018, 3, 31), "Completed", D(2018, 3, 31),
     "Form in use; the field was not carried into the electronic record in 2019", "Limited"],
    ["NM-05", "Child D", "2", "hidden-men", "Children's Social Care", "Principal Social Worker",
     "Assessments to identify and check every significant male in the child's life",
     D(2017, 12, 31), "Completed", D(2017, 12, 15),
     "Audit of 30 assessments: mother's partner recorded in 12", "Limited"],
    ["NM-06", "Child D", "3", "non-accidental-injury; under-1s", "Partnership",
     "Designated Doctor", "Multi-agency protocol on bruising in non-mobile babies",
     D(2018, 6, 30), "Completed", D(2018, 6, 30),
     "All GP practices signed up; referrals for bruised babies up from 3 to 14 a year", "Some"],
    ["NM-07", "Child D", "4", "under-1s", "Northmoor Health Providers", "Designated Nurse",
     "Introduce the ICON coping with crying programme", D(2018, 9, 30), "Completed",
     D(2018, 9, 30), "ICON conversation recorded for 91% of new births (2019)", "Strong"],
    ["NM-08", "Child E", "1", "hidden-men", "Partnership", "Learning and Development Lead",
     "Training on engaging fathers and male carers, with 'Working with Fathers and Male "
     "Carers' guidance", D(2020, 3, 31), "Completed", D(2020, 3, 20),
     "212 practitioners trained; only 9 from GP practices and 4 from adult services", "Limited"],
    ["NM-09", "Child E", "2", "domestic-abuse; information-sharing; under-1s", "Northmoor Police",
     "Detective Inspector, Public Protection", "Share domestic abuse notifications involving a "
     "pregnant woman or a baby with the midwife or health visitor within one working day",
     D(2020, 6, 30), "Completed", D(2020, 9, 30),
     "Dip sample: 87% of notifications shared within one working day", "Some"],
    ["NM-10", "Child E", "4", "professional-curiosity; thresholds-procedures", "Partnership",
     "Business Manager", "Remind all agencies of the escalation procedure and audit its use in "
     "primary care", D(2020, 3, 31), "Closed", D(2020, 6, 30), None, "None"],
    ["NM-11", "Child F", "1", "information-sharing; under-1s", "ICB", "Head of Midwifery",
     "Make household members a mandatory field in the electronic midwifery to health visiting "
     "handover", D(2023, 6, 30), "In progress", None, None, None],
    ["NM-12", "Child F", "2", "hidden-men", "Partnership", "Learning and Development Lead",
     "Review the impact of the fathers guidance and training and why practice has not changed",
     D(2023, 9, 30), "In progress", None, None, None],
    ["NM-13", "Child F", "3", "cross-border; hidden-men", "Northmoor Police",
     "Detective Inspector, Public Protection", "Checks on adults new to a household with a baby "
     "to include other police and local authority areas", D(2023, 3, 31), "Completed",
     D(2023, 2, 28), None, None],
    ["NM-14", "Child H", "1", "hidden-men; think-family-transition", "Partnership",
     "Learning and Development Lead", "Revise the fathers guidance so that it applies to adult "
     "mental health, substance misuse and probation", D(2024, 3, 31), "In progress", None,
     None, None],
    ["NM-15", "Child H", "3", "information-sharing; hidden-men", "Maternity and Health Visiting",
     "Head of Midwifery", "Add information about fathers and partners to the handover",
     D(2027, 3, 31), "Not started", None, None, None],
    ["EV-01", "Child C", "1", "sudi-safe-sleep; under-1s", "Easterby and Vale Health",
     "Safeguarding Nurse", "Safe sleep assessment tool at every midwife and health visitor "
     "contact", D(2021, 3, 31), "Completed", D(2021, 3, 31),
     "Tool completed at 94% of contacts; plans for changes in routine in 71%", "Strong"],
    ["EV-02", "Baby L (lcspr)", "1", "under-1s; non-accidental-injury", "Easterby and Vale Health",
     "Safeguarding Nurse", "Reinstate face-to-face ICON conversations with both parents",
     D(2021, 12, 31), "Completed", D(2021, 11, 30),
     "Both parents present for ICON in 58% of families", "Some"],
    ["EV-03", "Baby T", "2", "culture-ethnicity", "All agencies", "Partnership Manager",
     "Professional interpreters for every contact with a parent whose first language is not "
     "English", D(2024, 3, 31), "In progress", None, None, None],
    ["EV-04", "Child J", "4", "child-exploitation", "Partnership", "Exploitation Lead",
     "Training on adultification and language that blames children", D(2020, 9, 30),
     "Completed", D(2020, 11, 30), None, None],
    ["KB-01", "Child JT", "1", "domestic-abuse; information-sharing", "Kingsbridge Police",
     "Detective Chief Inspector", "Share domestic abuse notifications with health visitors, "
     "school nurses, schools and early years settings", D(2019, 3, 31), "Completed",
     D(2019, 3, 31), "Notifications reach schools; early years settings not included",
     "Limited"],
    ["KB-02", "Child Q and R", "1", "domestic-abuse; information-sharing", "Kingsbridge Police",
     "Detective Chief Inspector", "Extend domestic abuse notifications to health visitors and "
     "early years settings", D(2022, 3, 31), "Completed", D(2022, 4, 29),
     "Not yet evaluated", "None"],
    ["KB-03", "Child Q and R", "2", "neglect", "Children's Social Care", "Head of Service",
     "Complete Graded Care Profile 2 before closing any plan for neglect", D(2022, 9, 30),
     "Completed", D(2022, 9, 30), "Audit: GCP2 completed before closure in 9 of 10 plans",
     "Strong"],
]  # fmt: skip

TRAINING = [
    ["C-01", "Hidden Men: Finding Ways Forward", "hidden-men", "Northmoor SCP",
     "NM-08; NM-12", "Half-day multi-agency course on engaging fathers and male carers."],
    ["C-02", "Graded Care Profile 2", "neglect", "Northmoor SCP", "NM-01",
     "Two-day licensed training in the GCP2 neglect assessment tool."],
    ["C-03", "ICON: Babies Cry, You Can Cope", "under-1s; non-accidental-injury",
     "Health providers", "NM-07; EV-02", None],
    ["C-04", "Core Working Together", "information-sharing; thresholds-procedures",
     "Northmoor SCP", "NM-10", "Introductory multi-agency safeguarding course."],
    ["C-05", "Safe Sleep for Every Carer", "sudi-safe-sleep", "Easterby and Vale SCP",
     "EV-01", None],
    ["C-06", "Adultification and Language in Exploitation", "child-exploitation",
     "Easterby and Vale SCP", "EV-04", None],
]  # fmt: skip

SESSIONS = [
    ["S-01", "C-01", D(2019, 11, 12), 24, 2.6, 4.1],
    ["S-02", "C-01", D(2020, 1, 21), 31, 2.4, 4.0],
    ["S-03", "C-01", D(2020, 3, 10), 18, 2.9, 4.3],
    ["S-04", "C-02", D(2017, 6, 6), 16, 2.1, 4.2],
    ["S-05", "C-02", D(2017, 9, 12), 14, 2.3, 4.4],
    ["S-06", "C-03", D(2018, 7, 3), 40, 3.0, 4.2],
    ["S-07", "C-03", D(2021, 10, 5), 22, 3.1, 4.0],
    ["S-08", "C-04", D(2020, 5, 19), 28, 3.2, 3.6],
    ["S-09", "C-04", D(2022, 2, 8), 25, 3.3, 3.7],
    ["S-10", "C-05", D(2021, 2, 16), 35, 2.8, 4.5],
    ["S-11", "C-06", D(2020, 10, 13), 19, 2.2, 3.9],
    ["S-12", "C-06", D(2020, 11, 24), 21, 2.5, 4.0],
]

SHEETS = {
    "Actions": (ACTIONS_HEADER, ACTIONS),
    "Training": (
        ["Ref", "Course", "Themes", "Provider", "Linked actions", "Description"],
        TRAINING,
    ),
    "Sessions": (["Ref", "Course ref", "Date", "Attendance", "Pre score", "Post score"], SESSIONS),
}


def build(path: Path = OUT) -> Path:
    """Write the workbook (deterministic content) and return its path."""
    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for name, (header, rows) in SHEETS.items():
        sheet = workbook.create_sheet(name)
        sheet.append(header)
        for row in rows:
            sheet.append(row)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for column in sheet.columns:
            for cell in column[1:]:
                if isinstance(cell.value, date):
                    cell.number_format = "dd/mm/yyyy"
        sheet.freeze_panes = "A2"
    workbook.save(path)
    return path


if __name__ == "__main__":
    print(f"written {build()}")
