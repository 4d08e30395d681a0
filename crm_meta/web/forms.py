"""The wizard's and hub's forms (Flask-WTF: each carries the CSRF token)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp

ASSET_ID = r"^(act_)?\d{1,30}$"


class StartForm(FlaskForm):
    """Go to Meta's consent page; `rerequest=1` asks again for declined permissions."""

    rerequest = HiddenField(validators=[Optional()])


class SelectAccountForm(FlaskForm):
    """Step 3: the ad account (and the business it was picked from)."""

    account_id = StringField(_l("Ad account"), validators=[
        DataRequired(message=_l("Choose an ad account.")), Length(max=40),
        Regexp(ASSET_ID, message=_l("Choose an ad account from the list."))])
    business_id = HiddenField(validators=[Optional(), Length(max=40), Regexp(r"^(\d{1,30}|personal)$")])


class ConfirmForm(FlaskForm):
    """A button-only form (test connection, disconnect): CSRF is its only field."""
