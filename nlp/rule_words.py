"""Word classes for the named rules in nlp/rules.py: who is a parent, a child, a man in the
household; which words mean violence, harm, being unknown to services or an accident.

Kept apart from the rules so the vocabularies can be read (and extended) in one place; the
rules module holds the logic that uses them. Words are token norms (lower-cased lemmas).
"""

from __future__ import annotations


def words(text: str) -> frozenset[str]:
    """A word set from a space-separated string (keeps long vocabularies readable)."""
    return frozenset(text.split())


AGE_LIMITS = {"day": 366, "week": 52, "month": 12}
AGE_UNITS = frozenset(AGE_LIMITS)
ORG_NOUNS = words(
    "Team Teams Service Services Trust Unit Partnership Board Hub Forum Coordinator "
    "Co-ordinator Worker Workers Practitioner Practitioners Officer Lead Adviser "
    "Advisor Agency Clinic Charity Commissioner Liaison"
)
INVOLVEMENT = words(
    "know known refer referral open engage engagement support access under see assess "
    "treat input discharge attend receive wait list"
)
PARENT_OWNERS = words(
    "mother father mum dad parent carer maternal paternal parental postnatal "
    "perinatal adult stepfather stepmother caregiver"
)
CHILD_OWNERS = words(
    "child young adolescent teenager teenage pupil student girl boy son daughter "
    "camhs youth year sibling cypmhs"
)
YOUTH_WORDS = words("camhs teenager adolescent young pupil student suicide suicidal cypmhs")
STRONG_MH = [
    "mental health",
    "mental ill health",
    "mental ill-health",
    "mental illness",
    "mental health crisis",
    "psychiatric",
    "psychosis",
    "personality disorder",
    "bipolar",
    "schizophrenia",
]
WEAK_MH = [
    "depression",
    "anxiety",
    "depressed",
    "anxious",
    "antidepressant",
    "antidepressants",
    "low mood",
]

VIOLENCE = words(
    "assault attack injure hit punch strangle strangulation beat kick stab slap push "
    "throttle choke headbutt"
)
CHILD_VIOLENCE = VIOLENCE | frozenset(["shake", "smother", "suffocate", "throw"])
ADULT_FEMALE = words("mother mum wife girlfriend partner ex-partner woman ex-girlfriend ex-wife")
CHILD_VICTIMS = frozenset(
    [
        "child",
        "baby",
        "infant",
        "boy",
        "girl",
        "son",
        "daughter",
        "sibling",
        "toddler",
        "stepson",
        "stepdaughter",
        "old",
    ]  # "old" ends "the 2-year-old"
)
PASSIVE_AUX = frozenset({"be", "get", "been"})
# An injury the sentence itself calls an accident is not an assault ("fell from his bicycle").
ACCIDENT_WORDS = words(
    "accident accidental accidentally fell fall trip tripped crash collision slipped"
)
MALE_WORDS = words("father dad male man stepfather step-father boyfriend husband paternal fiance")
MALE_CANDIDATES = MALE_WORDS | frozenset({"partner"})
PARTNER_OWNERS = frozenset(["mother", "mum", "her", "male", "new"])
ENGAGE_CUES = words(
    "engage engagement include inclusion involvement consider consideration inquiry "
    "enquiry inquire enquire curiosity curious invite work"
)
ABSENT_WORDS = words("absent hidden invisible estranged unknown unidentified unseen")
INVOLVEMENT_NOUNS = frozenset(["involvement", "engagement", "inclusion", "participation", "role"])
UNKNOWN_SINGLE = words("unknown unidentified unassessed unseen invisible hidden")
UNKNOWN_NEG = frozenset(["not", "never", "no", "little", "nothing"])
UNKNOWN_VERBS = words(
    "know known assess see speak include consider identify check engage involve ask "
    "record invite aware information"
)
SERVICE_WORDS = words(
    "service agency professional police health practitioner local statutory social"
)
HARM_WORDS = words("injure injury assault harm kill perpetrate attack abuse hurt")
# A man in a caring role who harmed, endangered or was never looked at: the hidden-men pattern
# as reviews tell it ("her new partner was later convicted", "the step-father had a long
# history of offending", "they were unaware she had another partner").
CARER_MEN = words("stepfather step-father boyfriend stepdad step-dad")
FATHER_WORDS = words("father dad")
MEN_WORDS = words("man men")
HOUSEHOLD_WORDS = words("live living household home house stay staying visit visiting lodge")
SERIOUS_HARM = words(
    "murder kill manslaughter convict convicted charge charged guilty sentence sentenced "
    "prison imprison imprisoned arrest arrested assault assaulted abuse abused injure injured "
    "shake shook shaken cruelty violent violence offend offending offence offences "
    "perpetrator perpetrate attack attacked harm harmed rape raped"
)
RISK_WORDS = words("risk unaware unknown unassessed unseen invisible danger dangerous")
NOT_A_CARER = words(
    "foster social worker professional nurse officer practitioner teacher doctor clinician"
)
ASSESSED = words("assess assessed check checked vet vetted")

# --- incidents as notifications tell them (nlp/rules_incidents.py)
# Unsafe sleep: a baby asleep on a sofa, or in an adult's bed, with someone.
SLEEP_WORDS = words(
    "sleep slept asleep sleeping nap napping doze dozed co-sleep co-slept share shared sharing "
    "lie lay lying lain night overnight settle settled"
)
SLEEP_SURFACES = words("sofa settee couch armchair chair bed mattress airbed futon beanbag")
ADULT_SURFACE_OWNERS = words("parent parents parental adult double mother father mum dad")
BED_COMPANIONS = words(
    "mother mum father dad parent parents carer adult adults grandmother grandparent "
    "sibling siblings brother sister him her them he she baby infant"
)
FOUND_UNRESPONSIVE = ["unresponsive", "not breathing", "lifeless", "floppy and cold"]
INFANT_WORDS = words(
    "baby babies infant infants newborn new-born neonate neonatal"
)  # or an age under one (rules_people.baby_age)
SAFE_SURFACES = words("cot crib moses basket bassinet")

# Self-harm acts, owned by the child unless a parent is the one who did them.
SELF_ACTS = words(
    "cut cutting slash slashing burn burning scratch scratching hurt hurting harm harming "
    "injure injuring hang hanging strangle kill killing starve poison ligature"
)
CUT_ACTS = words("cut cutting slash slashing")
REFLEXIVES = words("herself himself themselves themself myself yourself")
BODY_PARTS = words("arm arms wrist wrists leg legs thigh thighs skin stomach body forearm forearms")
POSSESSIVES = words("her his their my own")
INGEST_VERBS = words("take took taken taking swallow swallowed swallowing ingest ingested")
MEDICINES = words(
    "tablet tablets pill pills paracetamol ibuprofen aspirin painkiller painkillers medication "
    "medicine antidepressant antidepressants sertraline fluoxetine codeine"
)
QUANTITY_WORDS = words(
    "quantity number amount handful lot packet packets pack packs box boxes bottle "
    "stockpile excess excessive many"
)
OVERDOSE_WORDS = words("overdose overdosed overdosing")
SUICIDE_ACTS = [
    "end her life",
    "end his life",
    "end their life",
    "end her own life",
    "end his own life",
    "end their own life",
]
OWNER_STOPS = words("that said told tell explain explained disclose disclosed he she they")
# Conjunctions that open a new clause with its own subject ("when Jade took an overdose"), but
# are prepositions before a noun ("admitted after two overdoses").
CLAUSE_OPENERS = words("after before when while because since until")
# "a parent who ended their own life": the relative pronoun's antecedent is the owner.
RELATIVES = words("who whom which")
INFANT_CONTEXT = words("baby infant toddler newborn")
NEGATORS = words("not never no n't deny denied denies without")

# Assaults by other young people: the agent decides ("attacked by a group of pupils").
PEER_AGENTS = words(
    "pupil pupils classmate classmates peer peers youth youths teenager teenagers boy boys "
    "girl girls student students schoolmate schoolmates gang young"
)
# Surface forms (not lemmas): a group or plural of young people as the one who attacked.
PEER_GROUPS = words(
    "group gang gangs pupils classmates peers youths teenagers boys girls students schoolmates "
    "people children others"
)
SIBLINGS = words("sister brother sibling stepbrother stepsister")
ADULT_AGENTS = words(
    "father dad mother mum stepfather stepmother man men adult adults partner boyfriend uncle "
    "aunt teacher officer carer staff grandfather grandmother parent parents woman women husband"
)
PEER_VIOLENCE = words(
    "assault assaulted attack attacked beat beaten punch punched kick kicked stab stabbed "
    "slap slapped hit injure injured rob robbed mug mugged threaten threatened jump jumped "
    "headbutt headbutted strangle strangled"
)
FILMED = words("film filmed record recorded video videoed")
# Filmed as evidence, not by the young people: "captured on CCTV and shared with the police".
EVIDENCE_FILMING = words("cctv bodycam body-worn police officer camera doorbell")
SHARED_ONLINE = words("share shared post posted upload uploaded circulate circulated send sent")
