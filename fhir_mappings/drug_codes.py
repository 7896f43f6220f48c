"""Medication codes and standard doses, as data with their sources.

FHIR release: R4 (4.0.1); medications arrive as RxNorm, ATC, dm+d/SNOMED CT codings or text.
Everything the medication mapping knows about drugs is in this module:

* :data:`INGREDIENTS`: each ingredient that matters (an antihypertensive class of
  :mod:`vocabulary.drug_classes`, or a rule fact such as ``nsaid``), its RxNorm ingredient
  (TTY=IN) code, ATC code, the names it is written as, and its standard daily dose.
* :data:`PRODUCTS`: product codes (RxNorm SCD/SBD/SCDC, dm+d VMP) with their strengths.
* :data:`ATC_GROUPS`: ATC group prefixes that give a class when no ingredient is known.

Sources (file/table of ``shared/research/clinical.md``): RxNorm ingredients 6.4 [V] (US Core
allergy-substance VS, VSAC ACEi/ARB/ARNI and beta-blocker ingredient VS); Synthea product codes
6.7 [V] (Synthea modules and Synthea-2021 output) plus codes seen in the Synthea-2021 fixtures
(display in the comment); ATC 6.3 [V] (WHO ATC via the EMA list); dm+d VMPs 6.5 [V] (dm+d April
2020 extract). Entries marked [M] are background knowledge, not re-checked against a source.
Versions: RxNorm 2019-2024 releases, ATC 2024, dm+d 2020-04.

Standard dose: the dose multiple of a class is daily dose / standard dose, with the standard
dose of the class's representative drug from ``vocabulary.CLASS_INFO`` (Law et al., BMJ
2003;326:1427: the usual maintenance dose) and, for the other ingredients, the usual adult
maintenance dose for hypertension in the BNF/SmPC [M] — chosen to be equipotent with the
representative's standard dose as far as the labels allow. A pharmacist should check the
``standard_mg`` column before release.

Decisions: sacubitril/valsartan counts as an ARB (its valsartan; 97/103 mg = valsartan 160 mg
equivalent, SmPC); eplerenone counts as the mineralocorticoid-receptor-antagonist class
(``spironolactone``, whose label is "mineralocorticoid-receptor antagonist"), standard 50 mg;
amiloride and triamterene are potassium-sparing (``potassium_supplement`` rule fact), not an
MRA; verapamil and diltiazem are not the dihydropyridine CCB class (``non_dhp_ccb`` fact);
aspirin is not counted as an NSAID (antiplatelet doses); loop diuretics and other
antihypertensives (hydralazine, methyldopa, moxonidine, clonidine, aliskiren, minoxidil) are
kept in the record but are not model classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from vocabulary.drug_classes import CLASS_INFO, DrugClass


class DrugGroup(StrEnum):
    """Non-class drug facts; the first four are rule facts of the feature table."""

    NSAID = "nsaid"
    POTASSIUM = "potassium_supplement"
    LITHIUM = "lithium"
    NON_DHP_CCB = "non_dhp_ccb"
    LOOP_DIURETIC = "loop_diuretic"
    OTHER_ANTIHYPERTENSIVE = "other_antihypertensive"
    NOT_ANTIHYPERTENSIVE = "not_antihypertensive"
    ALISKIREN = "aliskiren"
    """A direct renin inhibitor (rule fact: not with an ACEi or ARB, MHRA 2012)."""
    AIRWAYS = "airways_therapy"
    """Inhaled or oral asthma/COPD therapy (rule fact: evidence of airways disease)."""
    SACUBITRIL = "sacubitril_valsartan"
    """Sacubitril (with valsartan, an ARNI): rule fact (no ACE inhibitor within 36 hours)."""


RULE_GROUPS: Final = (DrugGroup.NSAID, DrugGroup.POTASSIUM, DrugGroup.LITHIUM,
                      DrugGroup.NON_DHP_CCB, DrugGroup.ALISKIREN, DrugGroup.AIRWAYS,
                      DrugGroup.SACUBITRIL)


@dataclass(frozen=True, slots=True)
class Ingredient:
    """A drug ingredient: class or group, codes, names and standard daily dose (mg)."""

    name: str
    drug_class: DrugClass | None
    group: DrugGroup | None
    rxnorm: str | None
    atc: str | None
    standard_mg: float | None
    names: tuple[str, ...] = ()
    source: str = "clinical.md 6.3/6.4 [V]"

    @property
    def all_names(self) -> tuple[str, ...]:
        return (self.name, *self.names)


def _std(drug_class: DrugClass) -> float:
    return CLASS_INFO[drug_class].standard_dose_mg


_A, _R, _C, _T = (DrugClass.ACE_INHIBITOR, DrugClass.ARB, DrugClass.CCB,
                  DrugClass.THIAZIDE_LIKE)
_B, _S, _X = DrugClass.BETA_BLOCKER, DrugClass.SPIRONOLACTONE, DrugClass.ALPHA_BLOCKER
_M = "[M]"

INGREDIENTS: Final[tuple[Ingredient, ...]] = (
    # ACE inhibitors (C09AA)
    Ingredient("ramipril", _A, None, "35296", "C09AA05", _std(_A)),
    Ingredient("lisinopril", _A, None, "29046", "C09AA03", 20.0),
    Ingredient("enalapril", _A, None, "3827", "C09AA02", 20.0),
    Ingredient("perindopril", _A, None, "54552", "C09AA04", 4.0),
    Ingredient("captopril", _A, None, "1998", "C09AA01", 50.0),
    Ingredient("benazepril", _A, None, "18867", "C09AA07", 20.0),
    Ingredient("quinapril", _A, None, None, "C09AA06", 20.0, source=_M),
    Ingredient("fosinopril", _A, None, None, "C09AA09", 20.0, source=_M),
    Ingredient("trandolapril", _A, None, None, "C09AA10", 2.0, source=_M),
    # ARBs (C09CA); sacubitril is carried by its valsartan (ARNI counts as ARB)
    Ingredient("candesartan", _R, None, "214354", "C09CA06", _std(_R)),
    Ingredient("losartan", _R, None, "52175", "C09CA01", 50.0),
    Ingredient("valsartan", _R, None, "69749", "C09CA03", 80.0),
    Ingredient("irbesartan", _R, None, "83818", "C09CA04", 150.0),
    Ingredient("telmisartan", _R, None, "73494", "C09CA07", 40.0),
    Ingredient("olmesartan", _R, None, None, "C09CA08", 20.0, source=_M),
    Ingredient("azilsartan", _R, None, "1091643", "C09CA09", 40.0),
    Ingredient("sacubitril", None, DrugGroup.SACUBITRIL, "1656328", None, None),
    # Dihydropyridine CCBs (C08CA)
    Ingredient("amlodipine", _C, None, "17767", "C08CA01", _std(_C)),
    Ingredient("felodipine", _C, None, "4316", "C08CA02", 5.0),
    Ingredient("nifedipine", _C, None, "7417", "C08CA05", 30.0),
    Ingredient("lercanidipine", _C, None, None, "C08CA13", 10.0),
    Ingredient("lacidipine", _C, None, None, "C08CA09", 4.0, source=_M),
    # Thiazide and thiazide-like diuretics (C03AA, C03BA) -> thiazide_like
    Ingredient("indapamide", _T, None, "5764", "C03BA11", _std(_T)),
    Ingredient("hydrochlorothiazide", _T, None, "5487", "C03AA03", 25.0, ("hctz",)),
    Ingredient("chlortalidone", _T, None, "2409", "C03BA04", 25.0, ("chlorthalidone",)),
    Ingredient("bendroflumethiazide", _T, None, "1369", "C03AA01", 2.5,
               ("bendrofluazide",), source="clinical.md 6.3 [V]; RxCUI 1369 [M]"),
    Ingredient("metolazone", _T, None, None, "C03BA08", 5.0, source=_M),
    # Beta-blockers (C07)
    Ingredient("bisoprolol", _B, None, "19484", "C07AB07", _std(_B)),
    Ingredient("atenolol", _B, None, "1202", "C07AB03", 50.0),
    Ingredient("metoprolol", _B, None, "6918", "C07AB02", 100.0),
    Ingredient("carvedilol", _B, None, "20352", "C07AG02", 25.0),
    Ingredient("labetalol", _B, None, "6185", "C07AG01", 400.0),
    Ingredient("propranolol", _B, None, None, "C07AA05", 160.0, source=_M),
    Ingredient("nebivolol", _B, None, None, "C07AB12", 5.0, source=_M),
    # Mineralocorticoid-receptor antagonists (C03DA) -> spironolactone class
    Ingredient("spironolactone", _S, None, "9997", "C03DA01", _std(_S)),
    Ingredient("eplerenone", _S, None, "298869", "C03DA04", 50.0,
               source="clinical.md 6.3 [V]; RxCUI 298869 [M]"),
    # Alpha-blockers (C02CA)
    Ingredient("doxazosin", _X, None, "49276", "C02CA04", _std(_X)),
    Ingredient("prazosin", _X, None, None, "C02CA01", 4.0, source=_M),
    Ingredient("terazosin", _X, None, None, "C02CA03", 2.0, source=_M),
    # Rule facts
    Ingredient("verapamil", None, DrugGroup.NON_DHP_CCB, "11170", "C08DA01", None),
    Ingredient("diltiazem", None, DrugGroup.NON_DHP_CCB, "3443", "C08DB01", None),
    Ingredient("ibuprofen", None, DrugGroup.NSAID, "5640", "M01AE01", None, source=_M),
    Ingredient("naproxen", None, DrugGroup.NSAID, "7258", "M01AE02", None, source=_M),
    Ingredient("diclofenac", None, DrugGroup.NSAID, "3355", "M01AB05", None, source=_M),
    Ingredient("celecoxib", None, DrugGroup.NSAID, "140587", "M01AH01", None, source=_M),
    Ingredient("etoricoxib", None, DrugGroup.NSAID, None, "M01AH05", None, source=_M),
    Ingredient("meloxicam", None, DrugGroup.NSAID, "41493", "M01AC06", None, source=_M),
    Ingredient("indometacin", None, DrugGroup.NSAID, "5781", "M01AB01", None,
               ("indomethacin",), source=_M),
    Ingredient("ketoprofen", None, DrugGroup.NSAID, None, "M01AE03", None, source=_M),
    Ingredient("lithium", None, DrugGroup.LITHIUM, None, "N05AN01", None,
               ("lithium carbonate", "lithium citrate"), source=_M),
    Ingredient("potassium chloride", None, DrugGroup.POTASSIUM, "8591", "A12BA01", None,
               ("sando-k", "slow-k"), source=_M),
    Ingredient("potassium bicarbonate", None, DrugGroup.POTASSIUM, None, "A12BA04", None,
               source=_M),
    Ingredient("amiloride", None, DrugGroup.POTASSIUM, "644", "C03DB01", None, source=_M),
    Ingredient("triamterene", None, DrugGroup.POTASSIUM, "10763", "C03DB02", None,
               source=_M),
    # Kept in the record, not model classes
    Ingredient("furosemide", None, DrugGroup.LOOP_DIURETIC, "4603", "C03CA01", None,
               ("frusemide", "lasix")),
    Ingredient("bumetanide", None, DrugGroup.LOOP_DIURETIC, None, "C03CA02", None,
               source=_M),
    Ingredient("torasemide", None, DrugGroup.LOOP_DIURETIC, None, "C03CA04", None,
               ("torsemide",), source=_M),
    Ingredient("hydralazine", None, DrugGroup.OTHER_ANTIHYPERTENSIVE, None, "C02DB02", None,
               source=_M),
    Ingredient("methyldopa", None, DrugGroup.OTHER_ANTIHYPERTENSIVE, None, "C02AB01", None,
               source=_M),
    Ingredient("moxonidine", None, DrugGroup.OTHER_ANTIHYPERTENSIVE, None, "C02AC05", None,
               source=_M),
    Ingredient("clonidine", None, DrugGroup.OTHER_ANTIHYPERTENSIVE, None, "C02AC01", None,
               source=_M),
    Ingredient("aliskiren", None, DrugGroup.ALISKIREN, "325646", "C09XA02", None,
               source=_M),
    # Asthma/COPD therapy: evidence of airways disease for the beta-blocker rule (RxNorm
    # ingredient codes and ATC R03 [M]; inhaled corticosteroids are also used in the nose,
    # so this is a caution, never a block)
    Ingredient("salbutamol", None, DrugGroup.AIRWAYS, "435", "R03AC02", None,
               ("albuterol", "ventolin"), source=_M),
    Ingredient("terbutaline", None, DrugGroup.AIRWAYS, "10368", "R03AC03", None,
               ("bricanyl",), source=_M),
    Ingredient("salmeterol", None, DrugGroup.AIRWAYS, "36117", "R03AC12", None, source=_M),
    Ingredient("formoterol", None, DrugGroup.AIRWAYS, "25255", "R03AC13", None,
               ("eformoterol",), source=_M),
    Ingredient("beclometasone", None, DrugGroup.AIRWAYS, "1347", "R03BA01", None,
               ("beclomethasone",), source=_M),
    Ingredient("budesonide", None, DrugGroup.AIRWAYS, "19831", "R03BA02", None, source=_M),
    Ingredient("fluticasone", None, DrugGroup.AIRWAYS, "41126", "R03BA05", None, source=_M),
    Ingredient("montelukast", None, DrugGroup.AIRWAYS, "88249", "R03DC03", None, source=_M),
    Ingredient("tiotropium", None, DrugGroup.AIRWAYS, "274783", "R03BB04", None, source=_M),
    Ingredient("ipratropium", None, DrugGroup.AIRWAYS, "7213", "R03BB01", None, source=_M),
    Ingredient("minoxidil", None, DrugGroup.OTHER_ANTIHYPERTENSIVE, None, "C02DC01", None,
               source=_M),
    Ingredient("isosorbide dinitrate", None, DrugGroup.NOT_ANTIHYPERTENSIVE, None,
               "C01DA08", None),
    Ingredient("digoxin", None, DrugGroup.NOT_ANTIHYPERTENSIVE, None, "C01AA05", None),
    Ingredient("ivabradine", None, DrugGroup.NOT_ANTIHYPERTENSIVE, None, "C01EB17", None),
)

INGREDIENTS_BY_NAME: Final[dict[str, Ingredient]] = {i.name: i for i in INGREDIENTS}
INGREDIENTS_BY_RXNORM: Final[dict[str, Ingredient]] = {
    i.rxnorm: i for i in INGREDIENTS if i.rxnorm}
INGREDIENTS_BY_ATC: Final[dict[str, Ingredient]] = {i.atc: i for i in INGREDIENTS if i.atc}


@dataclass(frozen=True, slots=True)
class Product:
    """A product code: its ingredients with strength in mg per unit (tablet, capsule, mL)."""

    code: str
    display: str
    parts: tuple[tuple[str, float], ...]
    source: str
    note: str = ""


def _p(code: str, display: str, parts: str, source: str, note: str = "") -> Product:
    """``parts`` as "name mg; name mg"."""
    out = []
    for part in parts.split(";"):
        name, mg = part.strip().rsplit(" ", 1)
        out.append((name, float(mg)))
    return Product(code, display, tuple(out), source, note)


_S67 = "clinical.md 6.7 (Synthea modules) [V]"
_S21 = "clinical.md 6.7 (Synthea-2021 output) [V]"
_FIX = "Synthea-2021 output (shared/fixtures/synthea-r4), display as shown"
_DMD = "clinical.md 6.5 (dm+d 2020-04 VMP) [V]"

RXNORM_PRODUCTS: Final[dict[str, Product]] = {p.code: p for p in (
    _p("314076", "lisinopril 10 MG Oral Tablet", "lisinopril 10", _S67),
    _p("314077", "lisinopril 20 MG Oral Tablet", "lisinopril 20", _S67),
    _p("310798", "Hydrochlorothiazide 25 MG Oral Tablet", "hydrochlorothiazide 25", _S67),
    _p("308136", "amLODIPine 2.5 MG Oral Tablet", "amlodipine 2.5", _S67),
    _p("979492", "losartan potassium 50 MG Oral Tablet", "losartan 50", _S67),
    _p("1656354", "sacubitril 97 MG / valsartan 103 MG Oral Tablet",
       "sacubitril 97; valsartan 160", _S67,
       "valsartan 103 mg in sacubitril/valsartan = valsartan 160 mg (SmPC)"),
    _p("200033", "carvedilol 25 MG Oral Tablet", "carvedilol 25", _S67),
    _p("313096", "spironolactone 25 MG Oral Tablet", "spironolactone 25", _S67),
    _p("313988", "Furosemide 40 MG Oral Tablet", "furosemide 40", _S67),
    _p("1719286", "10 ML Furosemide 10 MG/ML Injection", "furosemide 10", _S67),
    _p("905377", "hydralazine 37.5 MG / isosorbide dinitrate 20 MG Oral Tablet",
       "hydralazine 37.5; isosorbide dinitrate 20", _S67),
    _p("197604", "digoxin 0.125 MG Oral Tablet", "digoxin 0.125", _S67),
    _p("1649485", "ivabradine 5 MG Oral Tablet", "ivabradine 5", _S67),
    _p("316049", "Hydrochlorothiazide 25 MG", "hydrochlorothiazide 25", _S21),
    _p("316052", "Hydrochlorothiazide 6.25 MG", "hydrochlorothiazide 6.25", _S21),
    _p("197361", "Amlodipine 5 MG Oral Tablet", "amlodipine 5", _S21),
    _p("833036", "Captopril 25 MG Oral Tablet", "captopril 25", _S21),
    _p("897718", "Verapamil Hydrochloride 40 MG", "verapamil 40", _S21),
    _p("866414", "24 HR metoprolol succinate 100 MG Extended Release Oral Tablet [Toprol]",
       "metoprolol 100", _S21),
    _p("315971", "Lasix 40mg", "furosemide 40", _FIX),
    _p("849574", "Naproxen sodium 220 MG Oral Tablet", "naproxen 220", _FIX),
    _p("310965", "Ibuprofen 200 MG Oral Tablet", "ibuprofen 200", _FIX),
    _p("351256", "eplerenone 25 MG Oral Tablet", "eplerenone 25", "clinical.md 6.4 (VSAC) [V]"),
    _p("351257", "eplerenone 50 MG Oral Tablet", "eplerenone 50", "clinical.md 6.4 (VSAC) [V]"),
)}

DMD_PRODUCTS: Final[dict[str, Product]] = {p.code: p for p in (
    _p("318900007", "Ramipril 1.25mg capsules", "ramipril 1.25", _DMD),
    _p("318901006", "Ramipril 2.5mg capsules", "ramipril 2.5", _DMD),
    _p("318902004", "Ramipril 5mg capsules", "ramipril 5", _DMD),
    _p("318906001", "Ramipril 10mg capsules", "ramipril 10", _DMD),
    _p("408040007", "Ramipril 1.25mg tablets", "ramipril 1.25", _DMD),
    _p("408050008", "Ramipril 2.5mg tablets", "ramipril 2.5", _DMD),
    _p("408051007", "Ramipril 5mg tablets", "ramipril 5", _DMD),
    _p("408052000", "Ramipril 10mg tablets", "ramipril 10", _DMD),
    _p("319283006", "Amlodipine 5mg tablets", "amlodipine 5", _DMD),
    _p("319284000", "Amlodipine 10mg tablets", "amlodipine 10", _DMD),
    _p("317956008", "Indapamide 2.5mg tablets", "indapamide 2.5", _DMD),
    _p("317954006", "Indapamide 1.5mg modified-release tablets", "indapamide 2.5", _DMD,
       "indapamide 1.5 mg modified-release = 2.5 mg immediate-release (SmPC)"),
    _p("318955005", "Losartan 25mg tablets", "losartan 25", _DMD),
    _p("318956006", "Losartan 50mg tablets", "losartan 50", _DMD),
    _p("407784004", "Losartan 100mg tablets", "losartan 100", _DMD),
    _p("15148111000001100", "Losartan 12.5mg tablets", "losartan 12.5", _DMD),
    _p("317919004", "Bendroflumethiazide 2.5mg tablets", "bendroflumethiazide 2.5", _DMD),
    _p("317920005", "Bendroflumethiazide 5mg tablets", "bendroflumethiazide 5", _DMD),
    _p("318857003", "Lisinopril 2.5mg tablets", "lisinopril 2.5", _DMD),
    _p("318858008", "Lisinopril 5mg tablets", "lisinopril 5", _DMD),
    _p("318859000", "Lisinopril 10mg tablets", "lisinopril 10", _DMD),
    _p("318860005", "Lisinopril 20mg tablets", "lisinopril 20", _DMD),
    _p("318977009", "Candesartan 2mg tablets", "candesartan 2", _DMD),
    _p("318978004", "Candesartan 4mg tablets", "candesartan 4", _DMD),
    _p("318979007", "Candesartan 8mg tablets", "candesartan 8", _DMD),
    _p("318980005", "Candesartan 16mg tablets", "candesartan 16", _DMD),
    _p("376998003", "Candesartan 32mg tablets", "candesartan 32", _DMD),
    _p("318781001", "Doxazosin 1mg tablets", "doxazosin 1", _DMD),
    _p("318782008", "Doxazosin 2mg tablets", "doxazosin 2", _DMD),
    _p("318783003", "Doxazosin 4mg tablets", "doxazosin 4", _DMD),
    _p("421069003", "Doxazosin 8mg tablets", "doxazosin 8", _DMD),
    _p("134456001", "Doxazosin 4mg modified-release tablets", "doxazosin 4", _DMD),
    _p("135921004", "Doxazosin 8mg modified-release tablets", "doxazosin 8", _DMD),
    _p("318604001", "Bisoprolol 1.25mg tablets", "bisoprolol 1.25", _DMD),
    _p("318605000", "Bisoprolol 2.5mg tablets", "bisoprolol 2.5", _DMD),
    _p("318606004", "Bisoprolol 3.75mg tablets", "bisoprolol 3.75", _DMD),
    _p("318590006", "Bisoprolol 5mg tablets", "bisoprolol 5", _DMD),
    _p("318607008", "Bisoprolol 7.5mg tablets", "bisoprolol 7.5", _DMD),
    _p("318591005", "Bisoprolol 10mg tablets", "bisoprolol 10", _DMD),
    _p("318056008", "Spironolactone 25mg tablets", "spironolactone 25", _DMD),
    _p("318057004", "Spironolactone 50mg tablets", "spironolactone 50", _DMD),
    _p("318058009", "Spironolactone 100mg tablets", "spironolactone 100", _DMD),
    _p("317935006", "Chlortalidone 50mg tablets", "chlortalidone 50", _DMD),
    _p("376209006", "Hydrochlorothiazide 25mg tablets", "hydrochlorothiazide 25", _DMD),
    _p("318434003", "Atenolol 25mg tablets", "atenolol 25", _DMD),
    _p("318420003", "Atenolol 50mg tablets", "atenolol 50", _DMD),
    _p("318421004", "Atenolol 100mg tablets", "atenolol 100", _DMD),
    _p("318850001", "Enalapril 2.5mg tablets", "enalapril 2.5", _DMD),
    _p("318851002", "Enalapril 5mg tablets", "enalapril 5", _DMD),
    _p("318853004", "Enalapril 10mg tablets", "enalapril 10", _DMD),
    _p("318855006", "Enalapril 20mg tablets", "enalapril 20", _DMD),
    _p("318896009", "Perindopril erbumine 2mg tablets", "perindopril 2", _DMD),
    _p("318897000", "Perindopril erbumine 4mg tablets", "perindopril 4", _DMD),
    _p("374667004", "Perindopril erbumine 8mg tablets", "perindopril 8", _DMD),
    _p("319291002", "Felodipine 2.5mg modified-release tablets", "felodipine 2.5", _DMD),
    _p("319287007", "Felodipine 5mg modified-release tablets", "felodipine 5", _DMD),
    _p("319288002", "Felodipine 10mg modified-release tablets", "felodipine 10", _DMD),
    _p("319277008", "Nifedipine 20mg modified-release tablets", "nifedipine 20", _DMD),
    _p("319275000", "Nifedipine 30mg modified-release tablets", "nifedipine 30", _DMD),
    _p("319276004", "Nifedipine 60mg modified-release tablets", "nifedipine 60", _DMD),
)}


#: ATC groups -> class or group, for ATC codes without a known ingredient (clinical.md 6.3).
#: Combination groups carry two classes: C09BA ACEi + diuretic, C09BB ACEi + CCB,
#: C09DA ARB + diuretic, C09DB ARB + CCB, C03EA thiazide + K-sparing.
ATC_GROUPS: Final[dict[str, tuple[DrugClass | DrugGroup, ...]]] = {
    "C09AA": (_A,), "C09BA": (_A, _T), "C09BB": (_A, _C),
    "C09CA": (_R,), "C09DA": (_R, _T), "C09DB": (_R, _C), "C09DX04": (_R, DrugGroup.SACUBITRIL),
    "C08CA": (_C,), "C03AA": (_T,), "C03BA": (_T,), "C07": (_B,), "C03DA": (_S,),
    "C02CA": (_X,), "C08DA": (DrugGroup.NON_DHP_CCB,), "C08DB": (DrugGroup.NON_DHP_CCB,),
    "C03CA": (DrugGroup.LOOP_DIURETIC,), "M01A": (DrugGroup.NSAID,),
    "N05AN": (DrugGroup.LITHIUM,), "A12B": (DrugGroup.POTASSIUM,),
    "C03DB": (DrugGroup.POTASSIUM,), "C03EA": (_T, DrugGroup.POTASSIUM),
    "C03EB": (DrugGroup.LOOP_DIURETIC, DrugGroup.POTASSIUM),
    "C09XA": (DrugGroup.ALISKIREN,), "R03": (DrugGroup.AIRWAYS,),
}


def atc_group(code: str) -> tuple[DrugClass | DrugGroup, ...]:
    """Classes/groups of the longest ATC group prefix of ``code`` (none -> empty)."""
    for n in range(len(code), 2, -1):
        hit = ATC_GROUPS.get(code[:n])
        if hit:
            return hit
    return ()


def standard_mg(ingredient: Ingredient) -> float | None:
    """The ingredient's standard daily dose (class representative: vocabulary.CLASS_INFO)."""
    if ingredient.drug_class is not None and (
            CLASS_INFO[ingredient.drug_class].drug == ingredient.name):
        return CLASS_INFO[ingredient.drug_class].standard_dose_mg
    return ingredient.standard_mg
