"""The reports' words (trends, which actions bring members back, the calibration report in
plain words and its statistics), English and Hebrew. Merged into the staff page's one
catalogue by ``api.page.i18n``; kept apart only so the reports' many strings read together.
"""

from __future__ import annotations

from typing import Final

EN: Final[dict[str, str]] = {
    "rep.h1": "Reports",
    "rep.trends.h2": "Week by week",
    "rep.trends.hint": "The last {weeks}, Monday to Sunday in each site's local time "
    "({zone} for the weeks' dates). An episode counts in the week it opened, was first "
    "acted on, or closed.",
    "rep.trends.caption": "Members who went at risk, were contacted, came back or cancelled, "
    "each week",
    "rep.trends.week": "Week starting",
    "rep.trends.chart": "{measure}, week by week",
    "rep.trends.desc": "{measure}: {values}.",
    "rep.trends.value": "week of {date}: {n}",
    "rep.trends.empty": "Nothing happened in these weeks.",
    "rep.measure.at_risk": "Went at risk",
    "rep.measure.contacted": "Contacted",
    "rep.measure.came_back": "Came back",
    "rep.measure.cancelled": "Cancelled",
    "rep.out.h2": "Which actions bring members back",
    "rep.out.hint": "Episodes by the action staff took; “no action” is the baseline to beat. "
    "These are associations, not causes: staff choose whom to call.",
    "rep.out.none": "No episodes yet.",
    "rep.out.chart": "Which actions bring members back",
    "rep.out.came_back_of": "{n} of {closed} came back",
    "rep.out.no_closed": "no closed episode yet",
    "rep.out.caption": "Episodes by the action taken (an episode counts under each kind of "
    "action taken in it)",
    "rep.out.action": "Action",
    "rep.out.episodes": "Episodes",
    "rep.out.recovered": "Came back",
    "rep.out.churned": "Cancelled",
    "rep.out.open": "Still open",
    "rep.out.rate": "Came back, share of closed",
    "rep.out.median": "Median days from action to return",
    "rep.action.call": "Called",
    "rep.action.message": "Messaged",
    "rep.action.incentive": "Offered an incentive",
    "rep.action.other": "Other action",
    "rep.action.none": "No action (baseline)",
    "cal.h2": "Who Lapse flags, and why",
    "cal.none": "No calibration report yet. A manager runs {command} on the club's own "
    "history; its report then shows here.",
    "cal.made": "Chosen on {date} from your club's history of {start} to {end}.",
    "cal.chosen": "Lapse flags {policy}.",
    "cal.for_staff": "What it means for the front desk",
    "cal.alerts": "About {alerts} a week for your {members}.",
    "cal.alerts.fewer": "Fewer than one alert a week for your {members}.",
    "cal.precision": "Of every 10 members it flags, about {n} really are leaving.",
    "cal.delay": "It flags them about {days} after their last visit.",
    "cal.lead": "That leaves about {days} to call them before they would cancel.",
    "cal.recall": "It finds about {n} in 10 of the members who leave, before they cancel.",
    "cal.baseline": "For comparison, the usual rule (flag after 60 days without a visit): "
    "about {n} in 10 of its flags really leaving, {found} in 10 leavers found, "
    "{days} after the last visit.",
    "cal.same_as_baseline": "No other rule did better on your history, so the usual 60-day "
    "rule stays.",
    "cal.too_short": "Your gate data is too short yet to show any rule better than the usual "
    "60-day rule, so it stays: run the calibration again when the gate data covers more months.",
    "cal.missed.h": "Whom it finds, and whom it misses",
    "cal.missed.of": "Of the {leavers} of those months:",
    "cal.missed.caught": "{n}: flagged at least two weeks before cancelling.",
    "cal.missed.too_late": "{n}: flagged, but less than two weeks before cancelling.",
    "cal.missed.unreachable": "{n}: cancelled within five weeks of their last visit, too "
    "soon for any rule on visits to leave two weeks for a call.",
    "cal.missed.no_sign": "{n}: stopped coming without any warning sign (no fading visits, "
    "no failed payment, no refused entry); to the gates they look like a member on holiday.",
    "cal.missed.rare": "{n}: came less than once a fortnight, so a long absence was ordinary "
    "for them.",
    "cal.missed.sign_missed": "{n}: showed a sign (fewer visits, a failed payment or a "
    "refused entry) but were not flagged in time.",
    "cal.missed.near_end": "{n}: last came too near the end of the history to be judged "
    "by this rule.",
    "cal.unreadable": "This report holds no figures the page can read; run {command} again "
    "to make a new one.",
    "cal.tested": "Measured on the latest months of your history ({start} to {end}), which "
    "the choice never saw.",
    "cal.policy.fixed": "members who have not visited for {days}",
    "cal.policy.cadence": "members away much longer than their own usual gap between visits "
    "(never before {floor}, always by {cap})",
    "cal.policy.risk": "members whose estimated risk of not coming back passes {p} (a model "
    "fitted on your own members' absences)",
    "cal.policy.bgnbd": "members whose chance of still being active falls below {p} (never "
    "before {floor}, always by {cap})",
    "cal.policy.hybrid": "members away longer than {k} times their own usual gap between "
    "visits (at least {floor}, at most {cap})",
    "cal.policy.hybrid.longest": ", and longer than the longest absence they came back from",
    "cal.policy.hybrid.payment": "; after {days} when a payment failed or an entry was "
    "refused during the absence",
    "cal.policy.hybrid.payment.before": " or in the {before} before it",
    "cal.policy.hybrid.payment.lookback": "; after {days} when a payment failed or an entry "
    "was refused in the {before} before the absence",
    "cal.policy.hybrid.decline": "; sooner, after {days}, when their visits before the absence "
    "fell below {ratio} of their usual",
    "cal.policy.unknown": "members by the rule {name}",
    "cal.warnings.all": ", with early warnings (fewer visits, shorter visits, failed "
    "payments, refused entries)",
    "cal.warnings.payments": ", and members with a failed payment or a refused entry",
    "cal.details": "The statistics behind it",
    "cal.objective.met": "A setting met the club's objective on the training months.",
    "cal.objective.unmet": "No setting met the club's objective on the training months; the "
    "one catching the most leavers at least as precisely as the 60-day rule was chosen.",
    "cal.objective.most_precise": "No setting met the club's objective on the training months, "
    "nor caught three leavers at a lower precision: the most precise setting at least as "
    "precise as the 60-day rule was chosen.",
    "cal.objective.lowered": "No setting met the club's objective on the training months; "
    "the highest precision one reached, in steps of ten points, was {level}: of the settings "
    "that reached it, the one catching the most leavers was chosen.",
    "cal.held_out": "Each rule on the held-out months ({start} to {end})",
    "cal.training": "Each rule on the training months ({start} to {end})",
    "cal.col.rule": "Rule",
    "cal.col.recall": "Leavers found (recall)",
    "cal.col.precision": "Flags right (precision)",
    "cal.col.delay": "Median days after the last visit",
    "cal.col.lead": "Median days before cancelling",
    "cal.col.load": "Alerts per 1,000 members a week",
    "cal.col.caught": "Leavers found",
    "cal.col.alerts": "Alerts",
    "cal.col.eligible": "Precise enough",
    "cal.col.frontier": "On the frontier",
    "cal.chosen_mark": "(chosen)",
    "cal.family": "Every setting tried: {family} (training months)",
    "cal.family.fixed": "days without a visit",
    "cal.family.cadence": "the member's own rhythm",
    "cal.family.bgnbd": "chance of still being active (BG/NBD)",
    "cal.family.risk": "risk model",
    "cal.family.hybrid": "personal deadline, decline and payments (hybrid)",
    "cal.traits": "What leavers share: each trait, leavers against members who stayed",
    "cal.traits.hint": "AUC: the chance that a random leaver is further along the trait "
    "than a random stayer (0.5: no difference; strong from 0.70 with the 95% interval above "
    "0.60).",
    "cal.col.trait": "Trait",
    "cal.col.auc": "AUC",
    "cal.col.interval": "95% interval",
    "cal.col.strength": "Strength",
    "cal.trait.absence": "Days since the last visit",
    "cal.trait.frequency": "Visits a week",
    "cal.trait.decline": "Visit rate, last 4 weeks against the 12 before",
    "cal.trait.tenure": "Tenure",
    "cal.trait.duration": "Visit length, last 4 weeks against usual",
    "cal.trait.payments": "Failed payment in the 120 days before",
    "cal.trait.denied": "Refused entry in the 120 days before",
    "cal.strength.strong": "strong",
    "cal.strength.moderate": "moderate",
    "cal.strength.weak": "weak",
    "cal.yes": "yes",
    "cal.no": "no",
    "cal.full": "The full report as {command} wrote it (in English, for analysts)",
    "rep.table_region": "{caption} (scrolls sideways on small screens)",
}

HE: Final[dict[str, str]] = {
    "rep.h1": "דוחות",
    "rep.trends.h2": "שבוע אחר שבוע",
    "rep.trends.hint": "{weeks} אחרונים, מיום שני עד יום ראשון לפי השעון המקומי של כל "
    "סניף (תאריכי השבועות לפי {zone}). אירוע נספר בשבוע שבו נפתח, שבו טופל לראשונה או "
    "שבו נסגר.",
    "rep.trends.caption": "מנויים שנכנסו לסיכון, שנוצר איתם קשר, שחזרו או שביטלו, בכל שבוע",
    "rep.trends.week": "שבוע שמתחיל ב־",
    "rep.trends.chart": "{measure}, שבוע אחר שבוע",
    "rep.trends.desc": "{measure}: {values}.",
    "rep.trends.value": "שבוע {date}: {n}",
    "rep.trends.empty": "לא קרה דבר בשבועות האלה.",
    "rep.measure.at_risk": "נכנסו לסיכון",
    "rep.measure.contacted": "נוצר קשר",
    "rep.measure.came_back": "חזרו",
    "rep.measure.cancelled": "ביטלו",
    "rep.out.h2": "אילו פעולות מחזירות מנויים",
    "rep.out.hint": "אירועים לפי הפעולה שהצוות עשה; „ללא פעולה” הוא קו הבסיס שצריך לעבור. "
    "אלה קשרים ולא סיבות: הצוות בוחר למי להתקשר.",
    "rep.out.none": "עדיין אין אירועים.",
    "rep.out.chart": "אילו פעולות מחזירות מנויים",
    "rep.out.came_back_of": "{n} מתוך {closed} חזרו",
    "rep.out.no_closed": "עדיין אין אירוע סגור",
    "rep.out.caption": "אירועים לפי הפעולה שנעשתה (אירוע נספר תחת כל סוג פעולה שנעשה בו)",
    "rep.out.action": "פעולה",
    "rep.out.episodes": "אירועים",
    "rep.out.recovered": "חזרו",
    "rep.out.churned": "ביטלו",
    "rep.out.open": "עדיין פתוחים",
    "rep.out.rate": "חזרו, מתוך הסגורים",
    "rep.out.median": "חציון הימים מהפעולה עד החזרה",
    "rep.action.call": "שיחת טלפון",
    "rep.action.message": "הודעה",
    "rep.action.incentive": "הצעת הטבה",
    "rep.action.other": "פעולה אחרת",
    "rep.action.none": "ללא פעולה (קו בסיס)",
    "cal.h2": "את מי המערכת מסמנת, ולמה",
    "cal.none": "עדיין אין דוח כיול. מנהל/ת מריצים {command} על ההיסטוריה של המועדון, "
    "והדוח יופיע כאן.",
    "cal.made": "נבחר ב־{date} מתוך ההיסטוריה של המועדון מ־{start} עד {end}.",
    "cal.chosen": "המערכת מסמנת {policy}.",
    "cal.for_staff": "מה זה אומר לדלפק הקבלה",
    "cal.alerts": "בערך {alerts} בשבוע עבור {members} שלכם.",
    "cal.alerts.fewer": "פחות מהתראה אחת בשבוע עבור {members} שלכם.",
    "cal.precision": "מכל 10 מנויים שהיא מסמנת, בערך {n} באמת עוזבים.",
    "cal.delay": "היא מסמנת אותם בערך {days} אחרי הביקור האחרון שלהם.",
    "cal.lead": "כך נשארים בערך {days} להתקשר אליהם לפני שהיו מבטלים.",
    "cal.recall": "היא מוצאת בערך {n} מכל 10 מנויים שעוזבים, לפני שהם מבטלים.",
    "cal.baseline": "להשוואה, הכלל הרגיל (סימון אחרי 60 יום בלי ביקור): בערך {n} מכל 10 "
    "שהוא מסמן באמת עוזבים, {found} מכל 10 עוזבים נמצאים, {days} אחרי הביקור האחרון.",
    "cal.same_as_baseline": "שום כלל אחר לא עשה טוב יותר על ההיסטוריה שלכם, ולכן הכלל "
    "הרגיל של 60 יום נשאר.",
    "cal.too_short": "נתוני השערים שלכם עדיין קצרים מכדי להראות שכלל כלשהו טוב יותר מהכלל "
    "הרגיל של 60 יום, ולכן הוא נשאר: הריצו את הכיול שוב כשנתוני השערים יכסו יותר חודשים.",
    "cal.missed.h": "את מי היא מוצאת, ואת מי היא מפספסת",
    "cal.missed.of": "מתוך {leavers} של החודשים האלה:",
    "cal.missed.caught": "{n}: סומנו לפחות שבועיים לפני הביטול.",
    "cal.missed.too_late": "{n}: סומנו, אבל פחות משבועיים לפני הביטול.",
    "cal.missed.unreachable": "{n}: ביטלו בתוך חמישה שבועות מהביקור האחרון, מוקדם מדי לכל "
    "כלל שמבוסס על ביקורים כדי להשאיר שבועיים לשיחה.",
    "cal.missed.no_sign": "{n}: הפסיקו להגיע בלי שום סימן אזהרה (בלי ירידה בביקורים, בלי "
    "תשלום שנכשל, בלי כניסה שנדחתה); בשערים הם נראים כמו מנוי בחופשה.",
    "cal.missed.rare": "{n}: הגיעו פחות מפעם בשבועיים, כך שהיעדרות ארוכה הייתה רגילה אצלם.",
    "cal.missed.sign_missed": "{n}: הראו סימן (פחות ביקורים, תשלום שנכשל או כניסה שנדחתה) "
    "אבל לא סומנו בזמן.",
    "cal.missed.near_end": "{n}: הגיעו לאחרונה קרוב מדי לסוף ההיסטוריה כדי שהכלל הזה ישפוט אותם.",
    "cal.unreadable": "הדוח הזה אינו מכיל נתונים שהדף יכול לקרוא; הריצו {command} שוב כדי "
    "ליצור דוח חדש.",
    "cal.tested": "נמדד על החודשים האחרונים של ההיסטוריה שלכם ({start} עד {end}), שהבחירה לא ראתה.",
    "cal.policy.fixed": "מנויים שלא הגיעו במשך {days}",
    "cal.policy.cadence": "מנויים שנעדרים הרבה יותר מהפער הרגיל שלהם בין ביקורים (אחרי "
    "{floor} לפחות, ולכל המאוחר אחרי {cap})",
    "cal.policy.risk": "מנויים שהסיכון המוערך שלא יחזרו עובר {p} (מודל שהותאם להיעדרויות של "
    "המנויים שלכם)",
    "cal.policy.bgnbd": "מנויים שהסיכוי שהם עדיין פעילים יורד מתחת ל־{p} (אחרי {floor} "
    "לפחות, ולכל המאוחר אחרי {cap})",
    "cal.policy.hybrid": "מנויים שנעדרים יותר מ־{k} פעמים הפער הרגיל שלהם בין ביקורים (לפחות "
    "{floor}, לכל היותר {cap})",
    "cal.policy.hybrid.longest": ", ויותר מההיעדרות הארוכה ביותר שממנה חזרו",
    "cal.policy.hybrid.payment": "; אחרי {days} כשתשלום נכשל או שכניסה נדחתה במהלך ההיעדרות",
    "cal.policy.hybrid.payment.before": " או ב־{before} שלפניה",
    "cal.policy.hybrid.payment.lookback": "; אחרי {days} כשתשלום נכשל או שכניסה נדחתה ב־{before} "
    "שלפני ההיעדרות",
    "cal.policy.hybrid.decline": "; מוקדם יותר, אחרי {days}, כשהביקורים שלהם לפני ההיעדרות ירדו "
    "מתחת ל־{ratio} מהרגיל",
    "cal.policy.unknown": "מנויים לפי הכלל {name}",
    "cal.warnings.all": ", עם התרעות מוקדמות (פחות ביקורים, ביקורים קצרים יותר, תשלומים "
    "שנכשלו, כניסות שנדחו)",
    "cal.warnings.payments": ", וגם מנויים שתשלום שלהם נכשל או שנדחו בכניסה",
    "cal.details": "הסטטיסטיקה שמאחורי הבחירה",
    "cal.objective.met": "אחת ההגדרות עמדה ביעד של המועדון בחודשי האימון.",
    "cal.objective.unmet": "אף הגדרה לא עמדה ביעד של המועדון בחודשי האימון; נבחרה זו "
    "שמוצאת הכי הרבה עוזבים בדיוק שאינו נופל מזה של כלל 60 הימים.",
    "cal.objective.most_precise": "אף הגדרה לא עמדה ביעד של המועדון בחודשי האימון, ואף לא "
    "מצאה שלושה עוזבים בדיוק נמוך יותר: נבחרה ההגדרה המדויקת ביותר מבין אלה שדיוקן אינו נופל "
    "מזה של כלל 60 הימים.",
    "cal.objective.lowered": "אף הגדרה לא עמדה ביעד של המועדון בחודשי האימון; הדיוק הגבוה "
    "ביותר שהושג, בצעדים של עשר נקודות, היה {level}: מבין ההגדרות שהשיגו אותו נבחרה זו "
    "שמוצאת הכי הרבה עוזבים.",
    "cal.held_out": "כל כלל על החודשים שהוחזקו בצד ({start} עד {end})",
    "cal.training": "כל כלל על חודשי האימון ({start} עד {end})",
    "cal.col.rule": "כלל",
    "cal.col.recall": "עוזבים שנמצאו (רגישות)",
    "cal.col.precision": "סימונים נכונים (דיוק)",
    "cal.col.delay": "חציון ימים אחרי הביקור האחרון",
    "cal.col.lead": "חציון ימים לפני הביטול",
    "cal.col.load": "התראות ל־1,000 מנויים בשבוע",
    "cal.col.caught": "עוזבים שנמצאו",
    "cal.col.alerts": "התראות",
    "cal.col.eligible": "מדויק מספיק",
    "cal.col.frontier": "על החזית",
    "cal.chosen_mark": "(נבחר)",
    "cal.family": "כל ההגדרות שנוסו: {family} (חודשי האימון)",
    "cal.family.fixed": "ימים בלי ביקור",
    "cal.family.cadence": "הקצב האישי של המנוי",
    "cal.family.bgnbd": "הסיכוי שעדיין פעיל (BG/NBD)",
    "cal.family.risk": "מודל סיכון",
    "cal.family.hybrid": "מועד אישי, ירידה ותשלומים (משולב)",
    "cal.traits": "מה משותף לעוזבים: כל תכונה, עוזבים מול מנויים שנשארו",
    "cal.traits.hint": "AUC: הסיכוי שעוזב אקראי מתקדם יותר בתכונה ממנוי אקראי שנשאר (0.5: "
    "אין הבדל; חזק מ־0.70 כשרווח הסמך של 95% מעל 0.60).",
    "cal.col.trait": "תכונה",
    "cal.col.auc": "AUC",
    "cal.col.interval": "רווח סמך 95%",
    "cal.col.strength": "עוצמה",
    "cal.trait.absence": "ימים מאז הביקור האחרון",
    "cal.trait.frequency": "ביקורים בשבוע",
    "cal.trait.decline": "קצב ביקורים, 4 השבועות האחרונים מול 12 שלפניהם",
    "cal.trait.tenure": "ותק",
    "cal.trait.duration": "משך ביקור, 4 השבועות האחרונים מול הרגיל",
    "cal.trait.payments": "תשלום שנכשל ב־120 הימים שלפני",
    "cal.trait.denied": "כניסה שנדחתה ב־120 הימים שלפני",
    "cal.strength.strong": "חזקה",
    "cal.strength.moderate": "בינונית",
    "cal.strength.weak": "חלשה",
    "cal.yes": "כן",
    "cal.no": "לא",
    "cal.full": "הדוח המלא כפי ש־{command} כתב אותו (באנגלית, לאנליסטים)",
    "rep.table_region": "{caption} (נגלל לצדדים במסכים קטנים)",
}

# Counted nouns of the reports: (one, two, many), as ``api.page.i18n.NOUNS``.
NOUNS_EN: Final[dict[str, tuple[str, str, str]]] = {
    "week": ("1 week", "{n} weeks", "{n} weeks"),
    "leaver": ("1 leaver", "{n} leavers", "{n} leavers"),
}
NOUNS_HE: Final[dict[str, tuple[str, str, str]]] = {
    "week": ("שבוע אחד", "שבועיים", "{n} שבועות"),
    "leaver": ("עוזב אחד", "{n} עוזבים", "{n} עוזבים"),
}
