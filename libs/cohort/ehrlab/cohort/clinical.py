"""The clinical knowledge behind the cohort simulator: chronic conditions, acute problems, schedules.

Plain data, read by `ehrlab.cohort.simulator`. Rates are annual onset hazards chosen so that
prevalences by age and sex are of the order seen in primary-care EHRs (hypertension in about a third of
adults and most people over 75, type 2 diabetes in about 12% of adults, COPD mostly in smokers,
asthma mostly starting in childhood, …); they are illustrative, not fitted to a population. Codes
are ICD-9-CM; a "+" joins codes that are recorded together (e.g. "250.60+357.2").
"""

from __future__ import annotations

from dataclasses import dataclass

# Latent factors: each patient has one standard-normal score per factor; conditions load on one, so
# conditions of the same cluster co-occur beyond what their causal links (parents) explain.
CARDIOMETABOLIC, RESPIRATORY, MENTAL, MUSCULOSKELETAL, FRAILTY = range(5)
FACTORS = 5


@dataclass(frozen=True)
class Condition:
    """A chronic condition: once it starts it lasts, and is coded at later visits with probability `coding`.

    hazard(age) = rate * exp(slope * (age - ref_age)) per year for min_age <= age < max_age, times the
    patient's multipliers: sex (`sex` limits it to one sex; `female_rr` scales women's hazard), the
    latent factor (exp(loading * z - loading^2 / 2)) and, after the first onset of any parent,
    the product of the parents' hazard ratios (at most MAX_PARENT_RR). With `requires`, the hazard is zero until that
    condition starts (a complication of it).
    variants: code sets with weights; each patient gets one for life. onset: code sets recorded at
    the diagnosis visit instead (an acute event such as a myocardial infarction, then its history code).
    """

    name: str
    variants: tuple[tuple[str, float], ...]
    rate: float
    slope: float = 0.0
    ref_age: float = 60.0
    min_age: float = 0.0
    max_age: float = 120.0
    factor: int = FRAILTY
    loading: float = 0.5
    sex: str | None = None
    female_rr: float = 1.0
    parents: tuple[tuple[str, float], ...] = ()
    requires: str | None = None
    coding: float = 0.6
    onset: tuple[tuple[str, float], ...] = ()
    mortality_rr: float = 1.0
    visits_rr: float = 1.25


MAX_PARENT_RR = 4.0

# In dependency order: a condition's parents come before it.
CONDITIONS: tuple[Condition, ...] = (
    Condition("atopic_dermatitis", (("691.8", 1.0),), rate=0.02, slope=-0.15, ref_age=1.0, min_age=0.2,
              max_age=15.0, factor=RESPIRATORY, loading=0.8, coding=0.35),
    Condition("asthma", (("493.90", 0.7), ("493.00", 0.3)), rate=0.0006, slope=-0.04, min_age=1.0,
              factor=RESPIRATORY, loading=0.8, parents=(("atopic_dermatitis", 2.5),),
              onset=(("493.92", 1.0),), coding=0.55),
    Condition("allergic_rhinitis", (("477.9", 1.0),), rate=0.003, ref_age=20.0, min_age=2.0,
              factor=RESPIRATORY, loading=0.7, parents=(("asthma", 2.0), ("atopic_dermatitis", 1.5)),
              coding=0.35),
    Condition("adhd", (("314.01", 1.0),), rate=0.006, ref_age=8.0, min_age=4.0, max_age=14.0, factor=MENTAL,
              female_rr=0.4, coding=0.5),
    Condition("epilepsy", (("345.90", 1.0),), rate=0.0005, coding=0.7, mortality_rr=1.5),
    Condition("tobacco", (("305.1", 0.8), ("V15.82", 0.2)), rate=0.008, ref_age=20.0, min_age=14.0,
              max_age=45.0, factor=MENTAL, loading=0.4, female_rr=0.75, coding=0.45, mortality_rr=1.6),
    Condition("alcohol", (("305.00", 0.7), ("303.90", 0.3)), rate=0.003, slope=-0.02, ref_age=30.0,
              min_age=16.0, factor=MENTAL, loading=0.6, female_rr=0.4, parents=(("tobacco", 2.0),),
              coding=0.4, mortality_rr=1.5),
    Condition("depression", (("311", 0.65), ("296.30", 0.35)), rate=0.004, ref_age=30.0, min_age=12.0,
              factor=MENTAL, loading=0.8, female_rr=1.8, parents=(("alcohol", 1.8),), coding=0.5),
    Condition("anxiety", (("300.00", 0.6), ("300.02", 0.4)), rate=0.003, slope=-0.01, ref_age=30.0,
              min_age=8.0, factor=MENTAL, loading=0.8, female_rr=1.6, parents=(("depression", 2.0),),
              coding=0.45),
    Condition("schizophrenia", (("295.90", 1.0),), rate=0.0005, ref_age=25.0, min_age=15.0, max_age=40.0,
              factor=MENTAL, loading=0.6, female_rr=0.7, coding=0.75, mortality_rr=1.8),
    Condition("migraine", (("346.90", 1.0),), rate=0.0025, slope=-0.02, ref_age=30.0, min_age=10.0,
              max_age=50.0, factor=MENTAL, loading=0.3, female_rr=3.0, coding=0.35),
    Condition("obesity", (("278.00", 0.75), ("278.01", 0.25)), rate=0.005, ref_age=40.0, min_age=6.0,
              factor=CARDIOMETABOLIC, loading=0.7, coding=0.4),
    Condition("hyperlipidemia", (("272.4", 0.55), ("272.0", 0.25), ("272.2", 0.2)), rate=0.025, slope=0.04,
              min_age=20.0, factor=CARDIOMETABOLIC, loading=0.5, parents=(("obesity", 1.5),), coding=0.6),
    Condition("hypertension", (("401.9", 0.85), ("401.1", 0.15)), rate=0.025, slope=0.045, min_age=18.0,
              factor=CARDIOMETABOLIC, loading=0.6, parents=(("obesity", 2.0), ("alcohol", 1.4)),
              coding=0.75),
    Condition("type2_diabetes", (("250.00", 0.8), ("250.02", 0.2)), rate=0.007, slope=0.04, min_age=20.0,
              factor=CARDIOMETABOLIC, loading=0.7,
              parents=(("obesity", 2.5), ("hyperlipidemia", 1.5), ("gestational_diabetes", 3.0)), coding=0.8),
    Condition("diabetic_neuropathy", (("250.60+357.2", 1.0),), rate=0.012, requires="type2_diabetes",
              factor=CARDIOMETABOLIC, coding=0.6),
    Condition("vitamin_d_deficiency", (("268.9", 1.0),), rate=0.003, ref_age=50.0, min_age=10.0,
              factor=FRAILTY, loading=0.3, female_rr=1.5, parents=(("obesity", 1.5),), coding=0.35),
    Condition("hypothyroidism", (("244.9", 1.0),), rate=0.001, slope=0.03, min_age=10.0,
              factor=CARDIOMETABOLIC, loading=0.3, female_rr=4.0, coding=0.65),
    Condition("gerd", (("530.81", 1.0),), rate=0.005, slope=0.02, ref_age=50.0, min_age=15.0,
              factor=FRAILTY, parents=(("obesity", 1.5),), coding=0.45),
    Condition("sleep_apnea", (("327.23", 1.0),), rate=0.003, ref_age=55.0, min_age=30.0,
              factor=CARDIOMETABOLIC, female_rr=0.5, parents=(("obesity", 4.0),), coding=0.5),
    Condition("coronary_disease", (("414.01", 0.8), ("414.00", 0.2)), rate=0.006, slope=0.07, min_age=35.0,
              factor=CARDIOMETABOLIC, loading=0.6, female_rr=0.5,
              parents=(("hypertension", 1.8), ("type2_diabetes", 2.0), ("hyperlipidemia", 1.5), ("tobacco", 1.8)),
              coding=0.6, mortality_rr=1.5),
    Condition("myocardial_infarction", (("412", 1.0),), rate=0.002, slope=0.06, ref_age=65.0, min_age=35.0,
              factor=CARDIOMETABOLIC, female_rr=0.5,
              parents=(("coronary_disease", 4.0), ("type2_diabetes", 1.5), ("tobacco", 2.0)),
              onset=(("410.71", 0.5), ("410.91", 0.3), ("410.11", 0.2)), coding=0.4, mortality_rr=2.0,
              visits_rr=1.5),
    Condition("atrial_fibrillation", (("427.31", 1.0),), rate=0.002, slope=0.08, min_age=40.0,
              factor=CARDIOMETABOLIC, female_rr=0.7, parents=(("hypertension", 1.5), ("alcohol", 1.4)),
              coding=0.75, mortality_rr=1.4),
    Condition("heart_failure", (("428.0", 0.6), ("428.32", 0.25), ("428.22", 0.15)), rate=0.0015, slope=0.09,
              min_age=40.0, factor=CARDIOMETABOLIC,
              parents=(("coronary_disease", 2.5), ("myocardial_infarction", 3.0), ("hypertension", 2.0),
                       ("atrial_fibrillation", 2.0), ("type2_diabetes", 1.8)),
              coding=0.8, mortality_rr=3.0, visits_rr=1.6),
    Condition("chronic_kidney_disease", (("585.3", 0.5), ("585.9", 0.35), ("585.4", 0.15)), rate=0.003,
              slope=0.07, min_age=30.0, factor=CARDIOMETABOLIC,
              parents=(("type2_diabetes", 3.0), ("hypertension", 2.5), ("heart_failure", 1.5)),
              coding=0.7, mortality_rr=1.8, visits_rr=1.4),
    Condition("gout", (("274.9", 1.0),), rate=0.002, slope=0.03, min_age=30.0, factor=CARDIOMETABOLIC,
              female_rr=0.33, parents=(("chronic_kidney_disease", 2.0), ("hypertension", 1.5), ("obesity", 1.5)),
              coding=0.4),
    Condition("peripheral_vascular_disease", (("443.9", 1.0),), rate=0.0015, slope=0.07, ref_age=70.0,
              min_age=50.0, factor=CARDIOMETABOLIC, parents=(("type2_diabetes", 2.5), ("tobacco", 3.0)),
              coding=0.6, mortality_rr=1.5),
    Condition("stroke", (("V12.54", 0.7), ("438.20", 0.15), ("438.9", 0.15)), rate=0.002, slope=0.08,
              ref_age=70.0, min_age=40.0, factor=CARDIOMETABOLIC,
              parents=(("hypertension", 2.0), ("atrial_fibrillation", 3.0), ("type2_diabetes", 1.6),
                       ("tobacco", 1.8)),
              onset=(("434.91", 0.7), ("436", 0.3)), coding=0.5, mortality_rr=2.0, visits_rr=1.5),
    Condition("copd", (("496", 0.6), ("491.20", 0.25), ("492.8", 0.15)), rate=0.002, slope=0.06, min_age=40.0,
              factor=RESPIRATORY, loading=0.5, parents=(("tobacco", 5.0), ("asthma", 2.0)), coding=0.75,
              mortality_rr=2.0, visits_rr=1.5),
    Condition("anemia", (("285.9", 0.6), ("280.9", 0.4)), rate=0.002, slope=0.02, ref_age=40.0, min_age=1.0,
              factor=FRAILTY, female_rr=2.0, parents=(("chronic_kidney_disease", 3.0),), coding=0.45),
    Condition("osteoarthritis", (("715.90", 0.5), ("715.96", 0.3), ("715.16", 0.2)), rate=0.012, slope=0.05,
              min_age=35.0, factor=MUSCULOSKELETAL, loading=0.6, female_rr=1.3, parents=(("obesity", 1.8),),
              coding=0.5),
    Condition("back_pain", (("724.2", 1.0),), rate=0.006, slope=0.01, ref_age=40.0, min_age=16.0,
              factor=MUSCULOSKELETAL, loading=0.6, parents=(("obesity", 1.3),), coding=0.35),
    Condition("rheumatoid_arthritis", (("714.0", 1.0),), rate=0.0004, slope=0.02, ref_age=55.0, min_age=25.0,
              factor=MUSCULOSKELETAL, female_rr=2.5, coding=0.75),
    Condition("osteoporosis", (("733.00", 1.0),), rate=0.0016, slope=0.08, ref_age=65.0, min_age=45.0,
              factor=MUSCULOSKELETAL, female_rr=5.0, coding=0.5),
    Condition("benign_prostatic_hyperplasia", (("600.00", 0.7), ("600.01", 0.3)), rate=0.015, slope=0.06,
              ref_age=65.0, min_age=40.0, sex="M", coding=0.5),
    Condition("prostate_cancer", (("185", 0.8), ("V10.46", 0.2)), rate=0.002, slope=0.09, min_age=45.0,
              sex="M", onset=(("185", 1.0),), coding=0.6, mortality_rr=1.5),
    Condition("breast_cancer", (("174.9", 0.75), ("V10.3", 0.25)), rate=0.003, slope=0.03, min_age=30.0,
              sex="F", onset=(("174.9", 1.0),), coding=0.6, mortality_rr=1.6),
    Condition("lung_cancer", (("162.9", 1.0),), rate=0.0008, slope=0.06, ref_age=65.0, min_age=45.0,
              factor=RESPIRATORY, parents=(("tobacco", 8.0), ("copd", 2.0)), coding=0.8, mortality_rr=6.0,
              visits_rr=2.0),
    Condition("colon_cancer", (("153.9", 0.8), ("V10.05", 0.2)), rate=0.0006, slope=0.06, ref_age=65.0,
              min_age=40.0, onset=(("153.9", 1.0),), coding=0.6, mortality_rr=2.5),
    Condition("glaucoma", (("365.11", 1.0),), rate=0.002, slope=0.06, ref_age=70.0, min_age=45.0, coding=0.5),
    Condition("cataract", (("366.9", 0.6), ("366.16", 0.4)), rate=0.01, slope=0.08, ref_age=70.0, min_age=50.0,
              coding=0.3),
    Condition("dementia", (("331.0", 0.5), ("294.10", 0.2), ("290.0", 0.3)), rate=0.004, slope=0.12,
              ref_age=75.0, min_age=60.0, factor=FRAILTY, loading=0.6,
              parents=(("stroke", 2.0), ("type2_diabetes", 1.4)), coding=0.75, mortality_rr=3.0, visits_rr=1.4),
    Condition("hepatitis_c", (("070.54", 1.0),), rate=0.0002, ref_age=40.0, min_age=18.0, factor=MENTAL,
              parents=(("alcohol", 3.0),), coding=0.7, mortality_rr=1.5),
)

# Gestational diabetes is not a simulated condition of its own: it comes from pregnancy episodes and
# enters the conditions as a parent (of type 2 diabetes).
EPISODE_PARENTS = ("gestational_diabetes",)


@dataclass(frozen=True)
class Problem:
    """An acute problem or preventive item recorded at a visit: its codes (the first always recorded, the
    others each with probability `companion`), relative frequency `weight`, who gets it."""

    codes: tuple[str, ...]
    weight: float
    min_age: float = 0.0
    max_age: float = 120.0
    sex: str | None = None
    companion: float = 0.6


# The common problems of primary care; the rest of ICD-9-CM forms a long tail (see TAIL_* below).
PROBLEMS: tuple[Problem, ...] = (
    Problem(("465.9", "786.2"), 9.0),                     # upper respiratory infection, cough
    Problem(("462",), 3.0),                               # acute pharyngitis
    Problem(("034.0", "780.60"), 2.0, max_age=40.0),      # strep throat, fever
    Problem(("461.9",), 3.0, min_age=5.0),                # acute sinusitis
    Problem(("466.0", "786.2"), 3.0),                     # acute bronchitis
    Problem(("487.1", "780.60"), 1.5),                    # influenza
    Problem(("486", "786.2", "780.60"), 1.5),             # pneumonia
    Problem(("382.9", "780.60"), 8.0, max_age=12.0),      # otitis media (children)
    Problem(("381.10",), 1.5, max_age=12.0),              # serous otitis media
    Problem(("079.99", "780.60"), 3.0, max_age=18.0),     # viral infection
    Problem(("691.0",), 3.0, max_age=3.0),                # diaper rash
    Problem(("112.0",), 1.0, max_age=2.0),                # oral thrush
    Problem(("783.41",), 0.5, max_age=5.0),               # failure to thrive
    Problem(("684",), 1.0, max_age=15.0),                 # impetigo
    Problem(("372.30",), 2.5),                            # conjunctivitis
    Problem(("599.0", "788.1"), 4.0, sex="F"),            # urinary tract infection, dysuria
    Problem(("599.0",), 0.8, sex="M", min_age=50.0),
    Problem(("616.10",), 1.5, sex="F", min_age=14.0),     # vaginitis
    Problem(("626.2",), 1.0, sex="F", min_age=12.0, max_age=55.0),   # heavy menstruation
    Problem(("625.9",), 0.8, sex="F", min_age=12.0),
    Problem(("V72.31",), 3.0, sex="F", min_age=18.0, max_age=70.0),  # routine gynaecological exam
    Problem(("V76.2",), 1.5, sex="F", min_age=21.0, max_age=66.0),   # cervical cancer screening
    Problem(("V25.01",), 1.0, sex="F", min_age=15.0, max_age=45.0),  # oral contraceptive counselling
    Problem(("V76.12",), 2.5, sex="F", min_age=40.0),     # screening mammogram
    Problem(("V76.44",), 1.0, sex="M", min_age=50.0),     # prostate cancer screening
    Problem(("V76.51",), 1.2, min_age=50.0, max_age=76.0),  # colon cancer screening
    Problem(("V70.0",), 4.0, min_age=18.0),               # routine general medical examination
    Problem(("V04.81",), 4.0),                            # influenza vaccination
    Problem(("V06.1",), 2.0, max_age=7.0),                # DTP vaccination
    Problem(("V03.82",), 1.0, min_age=65.0),              # pneumococcal vaccination
    Problem(("V06.5",), 0.8, min_age=11.0),               # Td vaccination
    Problem(("558.9", "787.01"), 3.0),                    # gastroenteritis, nausea with vomiting
    Problem(("787.91",), 1.5),                            # diarrhoea
    Problem(("789.00",), 3.5),                            # abdominal pain
    Problem(("564.00",), 1.5),                            # constipation
    Problem(("535.50",), 1.0, min_age=15.0),              # gastritis
    Problem(("786.50", "786.05"), 3.0, min_age=25.0),     # chest pain, shortness of breath
    Problem(("780.2",), 1.0, min_age=12.0),               # syncope
    Problem(("780.4",), 2.0, min_age=15.0),               # dizziness
    Problem(("784.0",), 3.0, min_age=5.0),                # headache
    Problem(("780.79",), 2.0, min_age=15.0),              # malaise and fatigue
    Problem(("780.52",), 1.5, min_age=18.0),              # insomnia
    Problem(("782.3",), 1.0, min_age=45.0),               # oedema
    Problem(("790.29",), 1.5, min_age=30.0),              # abnormal glucose
    Problem(("783.21",), 0.5, min_age=40.0),              # weight loss
    Problem(("729.5",), 2.5, min_age=10.0),               # limb pain
    Problem(("719.46",), 2.0, min_age=15.0),              # knee pain
    Problem(("719.41",), 1.5, min_age=20.0),              # shoulder pain
    Problem(("726.10",), 1.0, min_age=30.0),              # shoulder tendon disorder
    Problem(("847.2", "724.2"), 2.0, min_age=16.0),       # lumbar sprain, low back pain
    Problem(("845.00", "E885.9"), 2.0, min_age=5.0),      # ankle sprain, fall from tripping
    Problem(("924.20", "E888.9"), 1.0),                   # contusion of foot, fall
    Problem(("959.01", "E888.9"), 1.0),                   # head injury, fall
    Problem(("873.42", "E849.0"), 1.0),                   # forehead wound, home accident
    Problem(("682.6",), 1.5, min_age=10.0),               # cellulitis of leg
    Problem(("692.9",), 2.5),                             # contact dermatitis
    Problem(("708.9",), 1.0),                             # urticaria
    Problem(("706.1",), 2.0, min_age=11.0, max_age=30.0),  # acne
    Problem(("110.1",), 1.0, min_age=30.0),               # onychomycosis
    Problem(("788.41",), 1.0, min_age=40.0),              # urinary frequency
    Problem(("599.70",), 0.7, min_age=40.0),              # haematuria
    Problem(("V58.69",), 2.5, min_age=40.0),              # long-term medication use
    Problem(("V67.59",), 1.5),                            # follow-up examination
    Problem(("V72.84",), 0.8, min_age=18.0),              # pre-operative examination
    Problem(("V57.1",), 0.8, min_age=25.0),               # physical therapy
    Problem(("V21.1",), 0.3, min_age=9.0, max_age=16.0),  # puberty
)

# Long tail: every other valid ICD-9-CM code, weighted by chapter (share of draws), by a Zipf law over a
# fixed pseudo-random order of the codes within the chapter, and 3x for unspecified codes (coders use
# them most). Chapters whose codes only come from episodes (pregnancy, perinatal) get no tail weight.
TAIL_SHARE = 0.35          # share of acute draws from the tail rather than PROBLEMS
TAIL_ZIPF = 1.1
TAIL_ORDER_SEED = 9_2015   # fixed: the tail's popularity order is part of the model, not of a run's seed
TAIL_CHAPTERS = {
    "001-139": 0.6, "140-239": 0.5, "240-279": 0.8, "280-289": 0.5, "290-319": 0.6, "320-389": 1.2,
    "390-459": 0.8, "460-519": 1.2, "520-579": 1.0, "580-629": 0.9, "630-679": 0.0, "680-709": 1.0,
    "710-739": 1.2, "740-759": 0.15, "760-779": 0.0, "780-799": 1.8, "800-999": 0.8, "V01-V91": 0.5,
    "E000-E999": 0.3,
}
# Chapter frequency by age band (multiplies TAIL_CHAPTERS): children get infections and injuries,
# older people circulatory, neoplastic and musculoskeletal problems.
AGE_BANDS = (0.0, 1.0, 5.0, 18.0, 45.0, 65.0, 200.0)
TAIL_AGE_PROFILE = {
    "001-139": (2.0, 2.0, 1.5, 1.0, 0.8, 0.8),
    "140-239": (0.1, 0.1, 0.2, 0.6, 1.5, 2.0),
    "390-459": (0.05, 0.05, 0.1, 0.6, 1.5, 2.5),
    "460-519": (2.0, 2.0, 1.5, 1.0, 1.0, 1.2),
    "710-739": (0.1, 0.2, 0.5, 1.0, 1.5, 1.8),
    "740-759": (4.0, 3.0, 2.0, 0.5, 0.3, 0.2),
    "800-999": (0.6, 1.2, 1.5, 1.2, 0.9, 1.1),
}

# Visits: routine encounter rates per year by age band (women 18-45 x1.3), times a patient's
# utilisation (gamma, mean 1) and the visits_rr of each condition they have (at most MAX_VISITS_RR in all).
VISIT_RATES = (3.0, 1.5, 0.8, 0.6, 0.9, 1.5)
MAX_VISITS_RR = 2.5
FEMALE_ADULT_VISITS = 1.3
UTILISATION_SHAPE = 2.0
ACUTE_PER_VISIT = 0.9      # mean number of acute problems per routine visit (Poisson)
ACUTE_FOLLOW_UP = 0.2      # chance an acute code is recorded again at the next visit within 60 days
# Well-child visits (ages in years) with V20.x codes, attended with probability 0.85 each.
WELL_CHILD_AGES = (3 / 365.25, 14 / 365.25, 2 / 12, 4 / 12, 6 / 12, 9 / 12, 1.0, 15 / 12, 1.5, 2.0, 2.5,
                   *range(3, 18))

# Mortality: Gompertz hazard A * exp(B * age) per year times exp(0.5 * frailty) and the conditions'
# mortality_rr.
GOMPERTZ_A = 2.5e-5
GOMPERTZ_B = 0.085

# Pregnancy: conceptions per woman-year by age band (15-19, 20-24, …, 45-49).
FERTILITY = (0.02, 0.07, 0.10, 0.10, 0.05, 0.012, 0.001)
PRENATAL_WEEKS = (8, 12, 20, 28, 32, 36)
MISCARRIAGE = 0.15
CESAREAN = 0.32
TWINS = 0.03
# Pregnancy complications: (name, probability, antepartum code, delivery code, first prenatal visit).
PREGNANCY_COMPLICATIONS = (
    ("gestational_diabetes", 0.07, "648.83", "648.81", 3),
    ("gestational_hypertension", 0.06, "642.33", "642.31", 3),
    ("anemia_of_pregnancy", 0.08, "648.23", "648.21", 1),
    ("hyperemesis", 0.03, "643.03", None, 0),
)

# Newborns seen at birth (born inside the window): birth-stay codes.
NEWBORN_JAUNDICE = 0.12
PRETERM = 0.09
