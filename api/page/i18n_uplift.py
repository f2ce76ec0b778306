"""The words of the reports page's uplift section and holdout control (issue 22), English and
Hebrew: "Does reaching out work?" in plain words, the figures behind it, and the manager's
control of the control group. Merged into the staff page's one catalogue by
``api.page.i18n``; kept apart so these strings read together.

Values in braces are figures, dates, shares or names: the page puts each in ``<bdi>``
(``charts.bdi_t``) so it keeps its own order inside a right-to-left sentence.
"""

from __future__ import annotations

from typing import Final

EN: Final[dict[str, str]] = {
    "up.h2": "Does reaching out work?",
    "up.none": "No control group yet. Hold back a share of new episodes (below) to measure "
    "what contact changes: members nobody reaches, drawn at random, are the only fair "
    "comparison.",
    "up.verdict.no_data": "Not proven yet: no settled episodes in both the contacted and the "
    "control group.",
    "up.verdict.proven": "Proven: reaching out brings back about {n} more members in 100 "
    "(between {low} and {high}).",
    "up.verdict.harmful": "Proven harmful: contacted members come back less often, about {n} "
    "fewer in 100 (between {low} and {high}).",
    "up.verdict.no_difference": "Not proven: contacted members came back no more often than "
    "the control group so far.",
    "up.verdict.need_more": "Not proven yet: need about {n} more settled episodes.",
    "up.rests": "Based on {settled} (the member came back, cancelled, or {days} passed).",
    "up.arm.contact": "Contacted: {share} came back.",
    "up.arm.control": "Control group (nobody reached out): {share} came back.",
    "up.of": "{back} of {n} ({pct})",
    "up.pending": "Still within {days} of opening, not counted yet: {n}.",
    "up.outside": "Opened while no control group was on, left out: {n}.",
    "up.details": "The figures behind it",
    "up.cancelled": "Cancelled within {days}: contacted {contact}, control group {control}.",
    "up.months": "About {n} member-months kept per 100 contacted episodes (months members "
    "stayed, contacted against the control group, up to a year).",
    "up.months.fewer": "About {n} member-months fewer per 100 contacted episodes (months "
    "members stayed, contacted against the control group, up to a year).",
    "up.caption": "Came back within {days}, {what}",
    "up.what.all": "all episodes, and by period of the control group",
    "up.what.severity": "by risk level when the episode opened",
    "up.what.site": "by site",
    "up.what.action": "by the first action taken",
    "up.what.policy": "by the rule that raised the alert",
    "up.col.group": "Group",
    "up.col.contact": "Contacted: came back",
    "up.col.control": "Control group: came back",
    "up.col.difference": "More in 100 (95% interval)",
    "up.all": "All",
    "up.period": "From {date} ({share})",
    "up.no_site": "No site",
    "up.no_action": "No action recorded",
    "up.interval": "{low} to {high}",
    "up.action_note": "By first action: the contacted episodes with that action against the "
    "whole control group. Staff choose the action, so only the two groups are drawn at random.",
    "up.method": "A dash means a group has no settled episode yet. Interval: Newcombe's hybrid "
    "score method; periods with different shares are never pooled.",
    "hold.h3": "Control group",
    "hold.on": "On: {share} of new episodes are held back since {date}.",
    "hold.off": "Off: every new episode goes on the contact list.",
    "hold.set_by": "Set by {who}.",
    "hold.reason_was": "Reason: {reason}",
    "hold.hint": "A change applies to episodes opened from now on; episodes already open keep "
    "their group. Every setting is kept with who made it, so the report never mixes periods.",
    "hold.share": "Share of new episodes to hold back",
    "hold.reason": "Reason (kept with the change)",
    "hold.set": "Set the control group",
    "hold.stop": "Stop the control group",
    "hold.stop_reason": "Reason for stopping (optional)",
    "hold.history": "Changes so far",
    "hold.period": "{share} from {start} to {end}: set by {who}, ended by {ender}.",
    "hold.period.open": "{share} from {start}, in force: set by {who}.",
    "hold.key": "API key {name}",
    "hold.done.set": "Saved: from now on {share} of new episodes are held back.",
    "hold.done.stop": "Stopped: from now on every new episode goes on the contact list.",
    "hold.done.same": "Nothing changed: that is already the setting in force.",
    "hold.site_key": "The control group applies to the whole club: a key bound to one site "
    "cannot change it.",
    "hold.needs": "Changing the control group needs a manager's account or a key with the "
    "admin scope.",
    # refusals of api/page/holdout.py (the English text is the key's value)
    "refusal.holdout_share": "Choose a share of more than 0 and at most 50 %.",
    "refusal.holdout_reason": "Give a reason for the change (at most 500 characters, no "
    "control characters).",
    "refusal.holdout_role": "Changing the control group needs a manager's account or a key "
    "with the admin scope.",
    "refusal.holdout_site": "The control group applies to the whole club: a key bound to one "
    "site cannot change it.",
}

HE: Final[dict[str, str]] = {
    "up.h2": "האם הפנייה למנויים עובדת?",
    "up.none": "עדיין אין קבוצת ביקורת. כדי למדוד מה הפנייה משנה, השאירו בצד חלק מהאירועים "
    "החדשים (למטה): מנויים שאיש לא פונה אליהם, שנבחרו באקראי, הם ההשוואה ההוגנת היחידה.",
    "up.verdict.no_data": "עדיין לא הוכח: אין אירועים שהוכרעו גם בקבוצה שפנו אליה וגם בקבוצת "
    "הביקורת.",
    "up.verdict.proven": "הוכח: הפנייה מחזירה בערך {n} מנויים נוספים מכל 100 (בין {low} ל־{high}).",
    "up.verdict.harmful": "הוכח שהפנייה מזיקה: מנויים שפנו אליהם חוזרים פחות, בערך {n} פחות מכל "
    "100 (בין {low} ל־{high}).",
    "up.verdict.no_difference": "לא הוכח: עד כה מנויים שפנו אליהם לא חזרו יותר מקבוצת הביקורת.",
    "up.verdict.need_more": "עדיין לא הוכח: צריך עוד בערך {n} אירועים שהוכרעו.",
    "up.rests": "על סמך {settled} (המנוי חזר, ביטל, או שעברו {days}).",
    "up.arm.contact": "פנו אליהם: {share} חזרו.",
    "up.arm.control": "קבוצת הביקורת (לא פנו אליהם): {share} חזרו.",
    "up.of": "{back} מתוך {n} ({pct})",
    "up.pending": "עדיין בתוך {days} מהפתיחה, לא נספרו עדיין: {n}.",
    "up.outside": "נפתחו כשלא הייתה קבוצת ביקורת, ולכן לא נכללו: {n}.",
    "up.details": "הנתונים שמאחורי זה",
    "up.cancelled": "ביטלו בתוך {days}: מאלה שפנו אליהם {contact}, מקבוצת הביקורת {control}.",
    "up.months": "בערך {n} חודשי מנוי נשמרו לכל 100 אירועים שפנו בהם (החודשים שמנויים נשארו, "
    "מי שפנו אליהם מול קבוצת הביקורת, עד שנה).",
    "up.months.fewer": "בערך {n} חודשי מנוי פחות לכל 100 אירועים שפנו בהם (החודשים שמנויים "
    "נשארו, מי שפנו אליהם מול קבוצת הביקורת, עד שנה).",
    "up.caption": "חזרו בתוך {days}, {what}",
    "up.what.all": "כל האירועים, ולפי תקופה של קבוצת הביקורת",
    "up.what.severity": "לפי רמת הסיכון כשהאירוע נפתח",
    "up.what.site": "לפי סניף",
    "up.what.action": "לפי הפעולה הראשונה שנעשתה",
    "up.what.policy": "לפי הכלל שהעלה את ההתראה",
    "up.col.group": "קבוצה",
    "up.col.contact": "פנו אליהם: חזרו",
    "up.col.control": "קבוצת ביקורת: חזרו",
    "up.col.difference": "יותר מכל 100 (רווח סמך 95%)",
    "up.all": "הכול",
    "up.period": "מ־{date} ({share})",
    "up.no_site": "ללא סניף",
    "up.no_action": "לא נרשמה פעולה",
    "up.interval": "{low} עד {high}",
    "up.action_note": "לפי פעולה ראשונה: האירועים שפנו בהם בפעולה הזאת מול כל קבוצת הביקורת. "
    "הצוות בוחר את הפעולה, ולכן רק שתי הקבוצות נבחרות באקראי.",
    "up.method": "קו מפריד: לקבוצה עדיין אין אירוע שהוכרע. רווח הסמך: שיטת הציון ההיברידית "
    "של ניוקום; תקופות עם שיעורים שונים לעולם אינן מאוחדות.",
    "hold.h3": "קבוצת ביקורת",
    "hold.on": "פעילה: {share} מהאירועים החדשים לא מטופלים מאז {date}.",
    "hold.off": "כבויה: כל אירוע חדש נכנס לרשימת הפנייה.",
    "hold.set_by": "נקבע על ידי {who}.",
    "hold.reason_was": "סיבה: {reason}",
    "hold.hint": "שינוי חל על אירועים שייפתחו מעכשיו; אירועים פתוחים נשארים בקבוצה שלהם. כל "
    "הגדרה נשמרת עם מי שקבע אותה, כך שהדוח לעולם אינו מערבב תקופות.",
    "hold.share": "החלק מהאירועים החדשים שלא יטופל",
    "hold.reason": "סיבה (נשמרת עם השינוי)",
    "hold.set": "קביעת קבוצת הביקורת",
    "hold.stop": "עצירת קבוצת הביקורת",
    "hold.stop_reason": "סיבת העצירה (לא חובה)",
    "hold.history": "השינויים עד כה",
    "hold.period": "{share} מ־{start} עד {end}: נקבע על ידי {who}, הסתיים על ידי {ender}.",
    "hold.period.open": "{share} מ־{start}, בתוקף: נקבע על ידי {who}.",
    "hold.key": "מפתח גישה {name}",
    "hold.done.set": "נשמר: מעכשיו {share} מהאירועים החדשים לא מטופלים.",
    "hold.done.stop": "נעצר: מעכשיו כל אירוע חדש נכנס לרשימת הפנייה.",
    "hold.done.same": "לא השתנה דבר: זו כבר ההגדרה שבתוקף.",
    "hold.site_key": "קבוצת הביקורת חלה על כל המועדון: מפתח של סניף אחד אינו יכול לשנות אותה.",
    "hold.needs": "כדי לשנות את קבוצת הביקורת צריך חשבון של מנהל/ת או מפתח עם הרשאת ניהול.",
    "refusal.holdout_share": "נא לבחור שיעור גדול מ־0 ועד 50%.",
    "refusal.holdout_reason": "נא לכתוב סיבה לשינוי (עד 500 תווים, בלי תווי בקרה).",
    "refusal.holdout_role": "כדי לשנות את קבוצת הביקורת צריך חשבון של מנהל/ת או מפתח עם "
    "הרשאת ניהול.",
    "refusal.holdout_site": "קבוצת הביקורת חלה על כל המועדון: מפתח של סניף אחד אינו יכול "
    "לשנות אותה.",
}

# Counted nouns of the section: (one, two, many), as ``api.page.i18n.NOUNS``.
NOUNS_EN: Final[dict[str, tuple[str, str, str]]] = {
    "settled_episode": ("1 settled episode", "{n} settled episodes", "{n} settled episodes"),
}
NOUNS_HE: Final[dict[str, tuple[str, str, str]]] = {
    "settled_episode": ("אירוע אחד שהוכרע", "{n} אירועים שהוכרעו", "{n} אירועים שהוכרעו"),
}
