"""The staff page's words in English and Hebrew (issue 20: the studios' staff work in Hebrew).

A catalogue is a plain dict per language with the same keys (a test checks it). Values are
``str.format`` templates; counts go through :func:`plural`, which knows each language's
forms (English "1 alert" / "2 alerts"; Hebrew has a dual for some nouns, "יומיים"). Numbers
stay in Western digits in both languages, as Israeli staff write them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo

from api.page import i18n_reports, i18n_uplift

Lang = Literal["en", "he"]
LANGS: Final[tuple[Lang, ...]] = ("en", "he")
DEFAULT: Final[Lang] = "en"
RTL: Final[frozenset[str]] = frozenset({"he"})

EN: Final[dict[str, str]] = {
    "brand": "Lapse",
    "nav.main": "Main",
    "nav.todo": "To do",
    "nav.reports": "Reports",
    "logout": "Log out",
    "skip": "Skip to main content",
    "language": "Language",
    "language.change": "Change",
    "login.title": "Log in",
    "login.login": "Email or user name",
    "login.password": "Password",
    "login.submit": "Log in",
    "login.key.summary": "Log in with an API key instead",
    "login.key.label": "Or an API key (set-up and machines)",
    "login.key.hint.1": "A key of your club with the",
    "login.key.hint.3": "It stays on the server: the browser keeps only a session cookie.",
    "login.key.submit": "Log in with the key",
    "error.form": "The form could not be read; please try again.",
    "error.expired": "The login form expired; please try again.",
    "error.key.unknown": "That API key is unknown or revoked.",
    "error.key.scope": "That API key lacks the alerts:read scope.",
    # The same words for a wrong password, an unknown name and a locked account (no oracle).
    "error.refused": "That name and password do not match an active account.",
    "action.call": "Called",
    "action.message": "Messaged",
    "action.incentive": "Offered incentive",
    "action.other": "Other",
    "severity.high": "High risk",
    "severity.medium": "Medium risk",
    "severity.low": "Low risk",
    "status.open": "open",
    "status.recovered": "came back",
    "status.churned": "cancelled",
    "member.active": "active",
    "member.frozen": "frozen",
    "member.cancelled": "cancelled",
    "alert.at_risk": "at risk",
    "alert.escalated": "escalated",
    "alert.recovered": "recovered",
    "alert.churned": "churned",
    "alert.win_back_due": "win-back due",
    "fig.absent": "Absent",
    "fig.visits4": "Visits, last 4 weeks",
    "fig.usually_every": "usually every {days}",
    "fig.no_rhythm": "no usual rhythm yet",
    "fig.usually_about": "usually about {n}",
    "fig.no_count": "no usual count yet",
    "fig.no_gate_data": "no gate data before {date}",
    "reasons": "Reasons",
    "note.optional": "Note (optional)",
    "ack.legend": "Acknowledge with what you did",
    "contact.call": "Call {name}",
    "contact.text": "Text",
    "contact.email": "Email",
    "episode.open_since": "Episode open since {date}",
    "actions.taken": "Actions taken",
    "alert.not_stored": "The alert of this episode is not stored yet.",
    "site": "Site",
    "site.all": "All sites",
    "site.show": "Show",
    "search.label": "Find a member",
    "search.placeholder": "Name or id",
    "search.submit": "Find",
    "search.note": "Members whose name or id contains “{query}”.",
    "search.everyone": "Show everyone",
    "list.title": "At-risk members",
    "list.h1": "At-risk members today",
    "list.todo": "To do",
    "list.todo.hint": "Members with an open episode nobody has acted on yet. Acknowledge "
    "with what you did: they move to Contacted.",
    "list.todo.empty": "Nothing to do: every open episode has an action.",
    "list.contacted": "Contacted",
    "list.contacted.hint": "Open episodes someone has acted on; they leave the list when the "
    "member comes back or cancels.",
    # The work list's compact rows, order, paging, time zones and export.
    "list.sort": "Sort by",
    "list.sort.risk": "Risk",
    "list.sort.absent": "Days absent",
    "list.sort.contact": "Last contact",
    "list.severity": "Risk level",
    "list.any_severity": "Any",
    "list.apply": "Apply",
    "list.more": "More",
    "list.more_about": "about {name}",
    "list.absent": "absent {days}",
    "list.never": "not contacted yet",
    "list.last_contact": "last contact {when}",
    "list.previous": "Previous page",
    "list.next": "Next page",
    "list.page": "Page {page} of {pages} ({members})",
    "list.pages": "Pages of the list",
    "list.export": "Download this list (CSV)",
    "list.zone_site": "Times are in each site's own time zone: {zones}.",
    "list.zone_utc": "{sites}: no time zone is set for the site, so its times are in UTC.",
    "notice.recorded_for": "Recorded: {action} for member {member}.",
    "notice.recorded": "Recorded: {action}.",
    "notice.moved": "Recorded: {action} for member {member}. Moved to Contacted.",
    "ack.failed": "The action was not recorded.",
    "ack.retry": "Please try again.",
    "member.title": "Member {id}",
    "member.back": "Back to the list",
    "member.id": "Member id {id}",
    "member.plan": "Plan {plan}",
    "member.crm": "CRM id {id}",
    "member.status": "Status",
    "member.last_visit": "Last visit",
    "member.deadline": "Deadline",
    "member.deadline.passed": "passed",
    "member.deadline.future": "when this absence stops being normal",
    "member.first_visit": "First visit",
    "member.visits_all": "Visits in all",
    "member.visit_length": "Usual visit length",
    "member.minutes": "{n} min",
    "member.unknown": "unknown",
    "member.visits.caption": "Recent visits kept by the detector",
    "member.visits.started": "Visit started",
    "member.visits.gap": "Gap since the previous",
    "member.visits.none": "No visit on record.",
    "timeline": "Visit timeline",
    "timeline.region": "Visit timeline (scrolls sideways on small screens)",
    "legend": "Legend",
    "legend.visit": "a visit (start time)",
    "legend.open": "episode open",
    "legend.recovered": "came back",
    "legend.churned": "cancelled",
    "legend.action": "action taken",
    "legend.deadline": "deadline",
    "timeline.hint": "Lapse keeps the start times of the last 12 visits, the first and last "
    "visit and the visit count, not every visit nor each visit's length.",
    "episodes": "Episodes",
    "episodes.none": "No episode so far.",
    "episode.alerts": "Alerts",
    "episode.actions": "Actions",
    "episode.none_yet": "None yet.",
    "episode.to": "{start} to {end}",
    # The holdout's control group (issue 22): why a member is not on the list.
    "holdout.member": (
        "In the control group: held back to measure whether reaching out helps ({share} of "
        "new episodes since {date}). Please do not contact this member about this absence; "
        "Lapse compares how many held-back members come back with the contacted ones."
    ),
    "holdout.episode": (
        "Control group: held back to measure whether reaching out helps ({share} of new "
        "episodes since {date}); not sent, not on the list."
    ),
    "holdout.list": (
        "Control group on: {share} of new episodes since {date} are held back to measure "
        "whether reaching out helps. Their members are not on this list; each one's page "
        "says so."
    ),
    "notfound.title": "Not found",
    "notfound.member": "There is no such member.",
    "notfound.report": "There is no such report.",
    "notfound.alert": "There is no such alert.",
    "back": "Back",
    # refusal pages (api/page/answers.py, refuse): the English text is the key's value
    "refusal.bad_request": "Bad request",
    "refusal.invalid": "Invalid request",
    "refusal.forbidden": "Forbidden",
    "refusal.logged_out": "Logged out",
    "refusal.not_found": "Not found",
    "refusal.choose_language": "Choose English or Hebrew.",
    "refusal.choose_action": "Choose what you did.",
    "refusal.form_unreadable": "The form could not be read.",
    "refusal.csrf": "The form's security token did not match.",
    "refusal.note_control": "The note holds control characters.",
    "refusal.note_long": "The note is longer than 2000 characters.",
    "refusal.role": "Your role does not open this page.",
    "refusal.session_ended": "Your session ended: log in again.",
    "refusal.no_alert": "no such alert",
    # the visit timeline (api/page/timeline.py)
    "tl.days": "{n} d",
    "tl.episode": "Episode {status}, {severity}",
    "tl.now": "now",
    "tl.action": "{action} on {date}",
    "tl.absent_for": "absent for {days}",
    "tl.absent": "absent {days}",
    "tl.visit": "visit {date}",
    "tl.today": "today",
    "tl.deadline_on": "deadline {date}",
    "tl.d.visits": "{visits} from {start} to {end}",
    "tl.d.absent": "absent {days} since the last one",
    "tl.d.none": "no visit on record",
    "tl.d.episodes": "{episodes} ({open} open)",
    # reasons (api/page/reasons.py)
    "reason.absent_beyond_usual_rhythm": "Absent longer than usual for them",
    "reason.absent_beyond_threshold": "Absent longer than the club's limit",
    "reason.probability_active_low": "Unlikely to still be active",
    "reason.risk_of_leaving": "Likely not coming back",
    "reason.absent_beyond_personal_limit": "Away longer than any break of theirs",
    "reason.absent_after_decline": "Came less and less, then stopped",
    "reason.absent_after_payment_problem": "Away after a payment problem",
    "reason.visit_frequency_decline": "Visiting less often",
    "reason.visit_duration_decline": "Shorter visits",
    "reason.entry_denied": "Refused entry at the gate",
    "reason.payment_failed": "A payment failed",
    "reason.member_recovered": "Came back",
    "reason.member_churned": "Cancelled",
    "why.raised_after": "Raised after {days} without a visit",
    "why.usually_every": "; usually every {days}",
    "why.normal_up_to": " (normal for them: up to {days})",
    "why.club_limit": "Raised after {days} without a visit; the club's limit is {limit}.",
    "why.p_alive": "Estimated chance they still visit: {p}",
    "why.alert_below": " (alert below {p}).",
    "why.frequency": "{visits} in the last 4 weeks; usually {usual}.",
    "why.duration": "Recent visits last about {recent} min; usually {usual} min.",
    "why.entry_denied": "The gate refused their card (check the membership or payment).",
    "why.payment_failed": "Their last payment did not go through.",
    "why.recovered": "They visited again: the episode is closed.",
    "why.churned": "They cancelled their membership.",
    "why.risk": "Estimated chance they will not come back: {p}",
    "why.alert_from": " (alert from {p}).",
    "why.away": " Away {days}",
    "why.warning": " A failed payment or a refused entry {when}.",
    "when.today": "today",
    "when.ago": "{days} ago",
    "why.before6": " Came {times} in the 6 weeks before; usually {usual}.",
    "why.gap_before": " {days} between their last two visits.",
    "why.recent_minutes": " Recent visits about {recent} min; usually {usual} min.",
    "why.personal": "Raised after {days} without a visit; their limit is {limit} ({factor} × "
    "their usual gap, never under the club's floor).",
    "why.longest_return": " The longest break they came back from: {days}.",
    "why.declined": "Came {times} in the 6 weeks before their last visit; usually {usual}. "
    "Away {days} (alert from {limit} when below {ratio} of usual).",
    "why.payment_absent": "A failed payment or a refused entry {when}; away {absent}.",
    "why.beyond": " Away longer than any absence they came back from (the longest: {days}).",
    "why.no_long_return": " Never came back from a long absence before.",
    "why.long_returns": " Came back from a long absence only {times} before.",
    "why.unknown": "Reason code {code}",
    # the administration (api/page/admin.py)
    "nav.admin": "Admin",
    "admin.title": "Administration",
    "admin.staff": "Staff accounts",
    "admin.keys": "API keys",
    "admin.webhooks": "Webhooks",
    "admin.name": "Name",
    "admin.login": "Email or user name",
    "admin.role": "Role",
    "admin.state": "State",
    "admin.password": "Password (at least 10 characters)",
    "admin.add_account": "Add account",
    "admin.change_role": "Change role",
    "admin.role_of": "Role of {name}",
    "admin.disable": "Disable",
    "admin.active": "active",
    "admin.disabled": "disabled",
    "admin.revoked": "revoked",
    "admin.locked": "locked",
    "role.front_desk": "Front desk",
    "role.manager": "Manager",
    "role.admin": "Admin",
    "admin.key_name": "Name (which device or integration)",
    "admin.scopes": "Scopes",
    "admin.site": "Site (empty: every site)",
    "admin.prefix": "Starts with",
    "admin.create_key": "Create key",
    "admin.revoke": "Revoke",
    "admin.key_shown": "The new key, shown only this once: store it now.",
    "admin.url": "URL (https)",
    "admin.description": "Description (optional)",
    "admin.add_webhook": "Add webhook",
    "admin.secret_shown": "The signing secret, shown only this once: store it in the CRM now.",
    "admin.none": "None yet.",
    "admin.done.account": "Account added.",
    "admin.done.role": "Role changed.",
    "admin.done.disabled": "Account disabled; its sessions ended.",
    "admin.done.revoked": "Key revoked.",
    "admin.done.hook_disabled": "Webhook disabled: deliveries wait.",
    "admin.error.taken": "That login name is taken.",
    "admin.error.password": "The password must be at least 10 characters.",
    "admin.error.login": "The login name must be 1 to 254 characters.",
    "admin.error.role": "Choose a role.",
    "admin.error.self": "You cannot disable or demote your own account.",
    "admin.error.no_account": "No such account.",
    "admin.error.no_key": "No such key.",
    "admin.error.no_hook": "No such webhook.",
    "admin.error.scopes": "Choose at least one scope.",
    "admin.error.key": "The key was refused: {reason}",
    "admin.error.url": "That URL is refused: {reason}",
    "admin.error.text": "A name or description holds control characters or is too long.",
    "refusal.site_admin": "A key bound to one site does not administer the club.",
}

HE: Final[dict[str, str]] = {
    "brand": "Lapse",
    "nav.main": "ראשי",
    "nav.todo": "לטיפול",
    "nav.reports": "דוחות",
    "logout": "יציאה",
    "skip": "דילוג לתוכן הראשי",
    "language": "שפה",
    "language.change": "החלפה",
    "login.title": "כניסה",
    "login.login": "דוא״ל או שם משתמש",
    "login.password": "סיסמה",
    "login.submit": "כניסה",
    "login.key.summary": "כניסה עם מפתח API במקום זאת",
    "login.key.label": "או מפתח API (להגדרה ולמערכות)",
    "login.key.hint.1": "מפתח של המועדון שלך עם ההרשאה",
    "login.key.hint.3": "המפתח נשאר בשרת: הדפדפן שומר רק עוגיית התחברות.",
    "login.key.submit": "כניסה עם המפתח",
    "error.form": "לא ניתן היה לקרוא את הטופס; נא לנסות שוב.",
    "error.expired": "תוקף טופס הכניסה פג; נא לנסות שוב.",
    "error.key.unknown": "מפתח ה־API הזה אינו מוכר או שבוטל.",
    "error.key.scope": "למפתח ה־API הזה אין את ההרשאה alerts:read.",
    "error.refused": "השם והסיסמה אינם תואמים חשבון פעיל.",
    "action.call": "התקשרתי",
    "action.message": "שלחתי הודעה",
    "action.incentive": "הצעתי הטבה",
    "action.other": "אחר",
    "severity.high": "סיכון גבוה",
    "severity.medium": "סיכון בינוני",
    "severity.low": "סיכון נמוך",
    "status.open": "פתוח",
    "status.recovered": "חזר/ה",
    "status.churned": "ביטל/ה",
    "member.active": "פעיל/ה",
    "member.frozen": "מוקפא/ת",
    "member.cancelled": "בוטל",
    "alert.at_risk": "בסיכון",
    "alert.escalated": "הסלמה",
    "alert.recovered": "חזר/ה",
    "alert.churned": "ביטל/ה",
    "alert.win_back_due": "הגיע הזמן להחזיר",
    "fig.absent": "היעדרות",
    "fig.visits4": "ביקורים ב־4 השבועות האחרונים",
    "fig.usually_every": "בדרך כלל כל {days}",
    "fig.no_rhythm": "עדיין אין קצב קבוע",
    "fig.usually_about": "בדרך כלל בערך {n}",
    "fig.no_count": "עדיין אין מספר רגיל",
    "fig.no_gate_data": "אין נתוני כניסה לפני {date}",
    "reasons": "סיבות",
    "note.optional": "הערה (לא חובה)",
    "ack.legend": "אישור עם מה שעשית",
    "contact.call": "להתקשר אל {name}",
    "contact.text": "הודעה",
    "contact.email": "דוא״ל",
    "episode.open_since": "אירוע פתוח מאז {date}",
    "actions.taken": "פעולות שבוצעו",
    "alert.not_stored": "ההתראה של האירוע הזה עדיין לא נשמרה.",
    "site": "סניף",
    "site.all": "כל הסניפים",
    "site.show": "הצגה",
    "search.label": "חיפוש מנוי",
    "search.placeholder": "שם או מזהה",
    "search.submit": "חיפוש",
    "search.note": "מנויים ששמם או המזהה שלהם מכילים “{query}”.",
    "search.everyone": "הצגת כולם",
    "list.title": "מנויים בסיכון",
    "list.h1": "מנויים בסיכון היום",
    "list.todo": "לטיפול",
    "list.todo.hint": "מנויים עם אירוע פתוח שאיש עוד לא טיפל בו. "
    "אשרו עם מה שעשיתם: הם עוברים ל„נוצר קשר”.",
    "list.todo.empty": "אין מה לעשות: לכל אירוע פתוח יש פעולה.",
    "list.contacted": "נוצר קשר",
    "list.contacted.hint": "אירועים פתוחים שמישהו כבר טיפל בהם; הם יורדים מהרשימה כשהמנוי "
    "חוזר או מבטל.",
    "list.sort": "מיון לפי",
    "list.sort.risk": "סיכון",
    "list.sort.absent": "ימי היעדרות",
    "list.sort.contact": "קשר אחרון",
    "list.severity": "רמת סיכון",
    "list.any_severity": "הכול",
    "list.apply": "החלה",
    "list.more": "עוד",
    "list.more_about": "על {name}",
    "list.absent": "נעדר/ת {days}",
    "list.never": "עוד לא נוצר קשר",
    "list.last_contact": "קשר אחרון {when}",
    "list.previous": "העמוד הקודם",
    "list.next": "העמוד הבא",
    "list.page": "עמוד {page} מתוך {pages} ({members})",
    "list.pages": "עמודי הרשימה",
    "list.export": "הורדת הרשימה לגיליון אלקטרוני",
    "list.zone_site": "השעות לפי אזור הזמן של כל סניף: {zones}.",
    "list.zone_utc": "{sites}: לא הוגדר אזור זמן לסניף, ולכן השעות שלו לפי UTC.",
    "notice.recorded_for": "נרשם: {action} עבור המנוי {member}.",
    "notice.recorded": "נרשם: {action}.",
    "notice.moved": "נרשם: {action} עבור המנוי {member}. עבר ל„נוצר קשר”.",
    "ack.failed": "הפעולה לא נרשמה.",
    "ack.retry": "נא לנסות שוב.",
    "member.title": "מנוי {id}",
    "member.back": "חזרה לרשימה",
    "member.id": "מזהה מנוי {id}",
    "member.plan": "מסלול {plan}",
    "member.crm": "מזהה CRM {id}",
    "member.status": "מצב",
    "member.last_visit": "ביקור אחרון",
    "member.deadline": "מועד אחרון",
    "member.deadline.passed": "עבר",
    "member.deadline.future": "מתי ההיעדרות הזאת מפסיקה להיות רגילה",
    "member.first_visit": "ביקור ראשון",
    "member.visits_all": "סך כל הביקורים",
    "member.visit_length": "משך ביקור רגיל",
    "member.minutes": "{n} דק׳",
    "member.unknown": "לא ידוע",
    "member.visits.caption": "ביקורים אחרונים שהמערכת שומרת",
    "member.visits.started": "תחילת הביקור",
    "member.visits.gap": "פער מהביקור הקודם",
    "member.visits.none": "אין ביקורים רשומים.",
    "timeline": "ציר הביקורים",
    "timeline.region": "ציר הביקורים (נגלל לצדדים במסכים קטנים)",
    "legend": "מקרא",
    "legend.visit": "ביקור (שעת התחלה)",
    "legend.open": "אירוע פתוח",
    "legend.recovered": "חזר/ה",
    "legend.churned": "ביטל/ה",
    "legend.action": "פעולה שבוצעה",
    "legend.deadline": "מועד אחרון",
    "timeline.hint": "המערכת שומרת את שעות ההתחלה של 12 הביקורים האחרונים, את הביקור הראשון "
    "והאחרון ואת מספר הביקורים, לא כל ביקור ולא את משך כל ביקור.",
    "episodes": "אירועים",
    "episodes.none": "עדיין אין אירועים.",
    "episode.alerts": "התראות",
    "episode.actions": "פעולות",
    "episode.none_yet": "עדיין אין.",
    "episode.to": "{start} עד {end}",
    "holdout.member": (
        "בקבוצת הביקורת: לא פונים אליו/ה כדי למדוד אם הפנייה עוזרת ({share} מהאירועים "
        "החדשים מאז {date}). נא לא ליצור קשר עם המנוי/ה בעניין היעדרות זו; Lapse משווה "
        "כמה מהמנויים שלא פנו אליהם חוזרים לעומת אלה שפנו אליהם."
    ),
    "holdout.episode": (
        "קבוצת ביקורת: לא פונים כדי למדוד אם הפנייה עוזרת ({share} מהאירועים החדשים מאז "
        "{date}); לא נשלח ולא מופיע ברשימה."
    ),
    "holdout.list": (
        "קבוצת ביקורת פעילה: {share} מהאירועים החדשים מאז {date} לא מטופלים כדי למדוד אם "
        "הפנייה עוזרת. המנויים שלהם אינם ברשימה זו; בדף של כל אחד מהם כתוב זאת."
    ),
    "notfound.title": "לא נמצא",
    "notfound.member": "אין מנוי כזה.",
    "notfound.report": "אין דוח כזה.",
    "notfound.alert": "אין התראה כזאת.",
    "back": "חזרה",
    "refusal.bad_request": "בקשה שגויה",
    "refusal.invalid": "בקשה לא תקינה",
    "refusal.forbidden": "אין הרשאה",
    "refusal.logged_out": "יצאת מהמערכת",
    "refusal.not_found": "לא נמצא",
    "refusal.choose_language": "נא לבחור אנגלית או עברית.",
    "refusal.choose_action": "נא לבחור מה עשית.",
    "refusal.form_unreadable": "לא ניתן היה לקרוא את הטופס.",
    "refusal.csrf": "אסימון האבטחה של הטופס לא תאם.",
    "refusal.note_control": "ההערה מכילה תווי בקרה.",
    "refusal.note_long": "ההערה ארוכה מ־2000 תווים.",
    "refusal.role": "התפקיד שלך אינו פותח את הדף הזה.",
    "refusal.session_ended": "החיבור הסתיים: נא להיכנס שוב.",
    "refusal.no_alert": "אין התראה כזאת",
    "tl.days": "{n} ימ׳",
    "tl.episode": "אירוע {status}, {severity}",
    "tl.now": "עכשיו",
    "tl.action": "{action} ב־{date}",
    "tl.absent_for": "נעדר/ת {days}",
    "tl.absent": "נעדר/ת {days}",
    "tl.visit": "ביקור {date}",
    "tl.today": "היום",
    "tl.deadline_on": "מועד אחרון {date}",
    "tl.d.visits": "{visits} מ־{start} עד {end}",
    "tl.d.absent": "נעדר/ת {days} מאז הביקור האחרון",
    "tl.d.none": "אין ביקורים רשומים",
    "tl.d.episodes": "{episodes} ({open} פתוחים)",
    "reason.absent_beyond_usual_rhythm": "נעדר/ת יותר מהרגיל אצלו/ה",
    "reason.absent_beyond_threshold": "נעדר/ת יותר מהגבול של המועדון",
    "reason.probability_active_low": "כנראה כבר לא פעיל/ה",
    "reason.risk_of_leaving": "כנראה לא יחזור/תחזור",
    "reason.absent_beyond_personal_limit": "נעדר/ת יותר מכל הפסקה רגילה שלו/ה",
    "reason.absent_after_decline": "הגיע/ה פחות ופחות ואז הפסיק/ה",
    "reason.absent_after_payment_problem": "נעדר/ת אחרי בעיה בתשלום",
    "reason.visit_frequency_decline": "מגיע/ה פחות",
    "reason.visit_duration_decline": "ביקורים קצרים יותר",
    "reason.entry_denied": "נדחה/תה בכניסה",
    "reason.payment_failed": "תשלום נכשל",
    "reason.member_recovered": "חזר/ה",
    "reason.member_churned": "ביטל/ה",
    "why.raised_after": "הותרע אחרי {days} בלי ביקור",
    "why.usually_every": "; בדרך כלל כל {days}",
    "why.normal_up_to": " (רגיל אצלו/ה: עד {days})",
    "why.club_limit": "הותרע אחרי {days} בלי ביקור; הגבול של המועדון הוא {limit}.",
    "why.p_alive": "הסיכוי המוערך שעוד יגיע/תגיע: {p}",
    "why.alert_below": " (התראה מתחת ל־{p}).",
    "why.frequency": "{visits} ב־4 השבועות האחרונים; בדרך כלל {usual}.",
    "why.duration": "הביקורים האחרונים נמשכים בערך {recent} דק׳; בדרך כלל {usual} דק׳.",
    "why.entry_denied": "השער דחה את הכרטיס (כדאי לבדוק את המנוי או התשלום).",
    "why.payment_failed": "התשלום האחרון לא עבר.",
    "why.recovered": "הגיע/ה שוב: האירוע נסגר.",
    "why.churned": "ביטל/ה את המנוי.",
    "why.risk": "הסיכוי המוערך שלא יחזור/תחזור: {p}",
    "why.alert_from": " (התראה מ־{p}).",
    "why.away": " נעדר/ת {days}",
    "why.warning": " תשלום שנכשל או כניסה שנדחתה {when}.",
    "when.today": "היום",
    "when.ago": "לפני {days}",
    "why.before6": " הגיע/ה {times} ב־6 השבועות שלפני; בדרך כלל {usual}.",
    "why.gap_before": " {days} בין שני הביקורים האחרונים.",
    "why.recent_minutes": " ביקורים אחרונים בערך {recent} דק׳; בדרך כלל {usual} דק׳.",
    "why.personal": "הותרע אחרי {days} בלי ביקור; הגבול שלו/ה הוא {limit} ({factor} × "
    "הפער הרגיל שלו/ה, לא פחות מהרצפה של המועדון).",
    "why.longest_return": " ההפסקה הארוכה ביותר שממנה חזר/ה: {days}.",
    "why.declined": "הגיע/ה {times} ב־6 השבועות שלפני הביקור האחרון; בדרך כלל {usual}. "
    "נעדר/ת {days} (התראה מ־{limit} כשזה מתחת ל־{ratio} מהרגיל).",
    "why.payment_absent": "תשלום שנכשל או כניסה שנדחתה {when}; נעדר/ת {absent}.",
    "why.beyond": " נעדר/ת יותר מכל היעדרות שממנה חזר/ה (הארוכה ביותר: {days}).",
    "why.no_long_return": " לא חזר/ה בעבר מהיעדרות ארוכה.",
    "why.long_returns": " חזר/ה מהיעדרות ארוכה רק {times} בעבר.",
    "why.unknown": "קוד סיבה {code}",
    # the administration (api/page/admin.py)
    "nav.admin": "ניהול",
    "admin.title": "ניהול",
    "admin.staff": "חשבונות צוות",
    "admin.keys": "מפתחות API",
    "admin.webhooks": "Webhooks",
    "admin.name": "שם",
    "admin.login": "דוא״ל או שם משתמש",
    "admin.role": "תפקיד",
    "admin.state": "מצב",
    "admin.password": "סיסמה (לפחות 10 תווים)",
    "admin.add_account": "הוספת חשבון",
    "admin.change_role": "שינוי תפקיד",
    "admin.role_of": "התפקיד של {name}",
    "admin.disable": "השבתה",
    "admin.active": "פעיל",
    "admin.disabled": "מושבת",
    "admin.revoked": "בוטל",
    "admin.locked": "נעול",
    "role.front_desk": "דלפק קבלה",
    "role.manager": "מנהל/ת",
    "role.admin": "מנהל/ת מערכת",
    "admin.key_name": "שם (איזה מכשיר או שילוב)",
    "admin.scopes": "הרשאות",
    "admin.site": "סניף (ריק: כל הסניפים)",
    "admin.prefix": "מתחיל ב־",
    "admin.create_key": "יצירת מפתח",
    "admin.revoke": "ביטול",
    "admin.key_shown": "המפתח החדש, מוצג פעם אחת בלבד: יש לשמור אותו עכשיו.",
    "admin.url": "כתובת (https)",
    "admin.description": "תיאור (לא חובה)",
    "admin.add_webhook": "הוספת webhook",
    "admin.secret_shown": "סוד החתימה, מוצג פעם אחת בלבד: יש לשמור אותו ב־CRM עכשיו.",
    "admin.none": "אין עדיין.",
    "admin.done.account": "החשבון נוסף.",
    "admin.done.role": "התפקיד שונה.",
    "admin.done.disabled": "החשבון הושבת; החיבורים שלו הסתיימו.",
    "admin.done.revoked": "המפתח בוטל.",
    "admin.done.hook_disabled": "ה־webhook הושבת: המשלוחים ממתינים.",
    "admin.error.taken": "שם המשתמש הזה תפוס.",
    "admin.error.password": "הסיסמה חייבת להכיל לפחות 10 תווים.",
    "admin.error.login": "שם המשתמש חייב להכיל 1 עד 254 תווים.",
    "admin.error.role": "נא לבחור תפקיד.",
    "admin.error.self": "אי אפשר להשבית או להוריד את התפקיד של החשבון שלך.",
    "admin.error.no_account": "אין חשבון כזה.",
    "admin.error.no_key": "אין מפתח כזה.",
    "admin.error.no_hook": "אין webhook כזה.",
    "admin.error.scopes": "נא לבחור לפחות הרשאה אחת.",
    "admin.error.key": "המפתח נדחה: {reason}",
    "admin.error.url": "הכתובת נדחתה: {reason}",
    "admin.error.text": "שם או תיאור מכילים תווי בקרה או ארוכים מדי.",
    "refusal.site_admin": "מפתח של סניף אחד אינו מנהל את המועדון.",
}

# The reports' words (api/page/i18n_reports.py) belong to the same catalogue.
EN.update(i18n_reports.EN)
HE.update(i18n_reports.HE)
# So do the uplift section's and the holdout control's (api/page/i18n_uplift.py).
EN.update(i18n_uplift.EN)
HE.update(i18n_uplift.HE)
CATALOGUES: Final[dict[str, dict[str, str]]] = {"en": EN, "he": HE}

# Counted nouns: (one, two, many) per language; English uses "many" for two as well, Hebrew
# has a dual for days and times ("יומיים", "פעמיים"); the "one" form carries no number.
NOUNS: Final[dict[str, dict[str, tuple[str, str, str]]]] = {
    "en": {
        "day": ("1 day", "{n} days", "{n} days"),
        "visit": ("1 visit", "{n} visits", "{n} visits"),
        "time": ("once", "twice", "{n} times"),
        "alert": ("1 alert", "{n} alerts", "{n} alerts"),
        "member": ("1 member", "{n} members", "{n} members"),
        "recent_visit": ("1 recent visit", "{n} recent visits", "{n} recent visits"),
        "episode": ("1 episode", "{n} episodes", "{n} episodes"),
    },
    "he": {
        "day": ("יום אחד", "יומיים", "{n} ימים"),
        "visit": ("ביקור אחד", "{n} ביקורים", "{n} ביקורים"),
        "time": ("פעם אחת", "פעמיים", "{n} פעמים"),
        "alert": ("התראה אחת", "{n} התראות", "{n} התראות"),
        "member": ("מנוי אחד", "{n} מנויים", "{n} מנויים"),
        "recent_visit": ("ביקור אחרון אחד", "{n} ביקורים אחרונים", "{n} ביקורים אחרונים"),
        "episode": ("אירוע אחד", "{n} אירועים", "{n} אירועים"),
    },
}

NOUNS["en"].update(i18n_reports.NOUNS_EN)
NOUNS["he"].update(i18n_reports.NOUNS_HE)
NOUNS["en"].update(i18n_uplift.NOUNS_EN)
NOUNS["he"].update(i18n_uplift.NOUNS_HE)

MONTHS_HE: Final[tuple[str, ...]] = (
    "ינואר", "פברואר", "מרץ", "אפריל", "מאי", "יוני",
    "יולי", "אוגוסט", "ספטמבר", "אוקטובר", "נובמבר", "דצמבר",
)  # fmt: skip
DAYS_HE: Final[tuple[str, ...]] = (
    "יום ב׳",
    "יום ג׳",
    "יום ד׳",
    "יום ה׳",
    "יום ו׳",
    "שבת",
    "יום א׳",
)


def refusal(lang: str, english: str) -> str:
    """A refusal's words (written in English where it is raised) in ``lang``; a text with no
    entry stays as written."""
    for key, text in EN.items():
        if key.startswith("refusal.") and text == english:
            return t(lang, key)
    return english


def lang_of(value: str | None) -> Lang:
    """A supported language from a stored or posted value; anything else is the default."""
    return "he" if value == "he" else "en" if value == "en" else DEFAULT


def t(lang: str, key: str, **values: object) -> str:
    """The text of ``key`` in ``lang`` (English when the key is missing: never a blank)."""
    template = CATALOGUES.get(lang, EN).get(key) or EN[key]
    return template.format(**values) if values else template


def plural(lang: str, noun: str, n: float) -> str:
    """``n`` of ``noun`` with the language's form: a whole 1 and 2 take the singular and the
    dual; fractions ("1.5 days") and other counts the plural, in Western digits."""
    one, two, many = NOUNS.get(lang, NOUNS["en"])[noun]
    shown = f"{n:.0f}" if n >= 10 or n == int(n) else f"{n:.1f}"
    if shown == "1":
        return one
    if shown == "2":
        return two.format(n=shown)
    return many.format(n=shown)


def direction(lang: str) -> str:
    return "rtl" if lang in RTL else "ltr"


def from_accept_language(header: str | None) -> Lang:
    """The browser's first supported language by quality (RFC 9110 §12.5.4), else English."""
    best: tuple[float, int, Lang] | None = None
    for i, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary == "iw":  # the old code for Hebrew, still sent by some Android browsers
            primary = "he"
        if primary not in CATALOGUES:
            continue
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        if best is None or (q, -i) > (best[0], best[1]):
            best = (q, -i, lang_of(primary))
    return best[2] if best else DEFAULT


def date_text(lang: str, value: datetime, tz: ZoneInfo, *, weekday: bool = False) -> str:
    """A date in the language's words: "Sat 5 Dec 2026", "שבת, 5 בדצמבר 2026"."""
    local = value.astimezone(tz)
    if lang == "he":
        text = f"{local.day} ב{MONTHS_HE[local.month - 1]} {local.year}"
        return f"{DAYS_HE[local.weekday()]}, {text}" if weekday else text
    return local.strftime("%a %-d %b %Y" if weekday else "%-d %b %Y")


def short_date(lang: str, value: datetime, tz: ZoneInfo) -> str:
    """Day and month only (timeline ticks)."""
    local = value.astimezone(tz)
    if lang == "he":
        return f"{local.day} ב{MONTHS_HE[local.month - 1]}"
    return local.strftime("%-d %b")
