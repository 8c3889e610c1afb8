"""Pages: sign in and out, the account page, and administration of organizations and users."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from referral_hub import policies
from referral_hub.accounts import operations as ops
from referral_hub.accounts.auth import session_lifetime
from referral_hub.accounts.forms import (
    ConfirmForm,
    LoginForm,
    MembershipForm,
    OrganizationForm,
    PasswordForm,
    ProfileForm,
    TokenForm,
    UserCreateForm,
    UserEditForm,
)
from referral_hub.accounts.models import Membership, Organization, User
from referral_hub.core.errors import NotFound, ValidationFailed
from referral_hub.core.urls import safe_next
from referral_hub.extensions import db, limiter
from referral_hub.web.forms import apply_errors, options

bp = Blueprint("accounts", __name__, template_folder="templates")
admin_bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


# --- signing in and out ---------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    form = LoginForm(next=request.args.get("next", ""))
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(form.next.data, url_for("web.home")))
    if form.validate_on_submit():
        user = ops.authenticate(form.email.data, form.password.data)
        if user is None:
            form.form_errors.append(_("E-mail or password is not correct."))
        else:
            key = ops.start_session(
                user, lifetime=session_lifetime(), user_agent=request.user_agent.string
            )
            db.session.commit()
            session.clear()
            session.permanent = True
            user.session_key = key
            login_user(user)
            return redirect(safe_next(form.next.data, url_for("web.home")))
    # Keep what was typed, never the password.
    form.password.data = ""
    return render_template("accounts/login.html", form=form), 200 if not form.errors else 422


@bp.post("/logout")
def logout():
    form = ConfirmForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        ops.end_session(current_user.session_key)
        db.session.commit()
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("accounts.login"))


# --- the account page -----------------------------------------------------------------------


def _account_page(status: int = 200, **forms):
    forms.setdefault(
        "profile_form", ProfileForm(obj=current_user, locale=current_user.locale or "")
    )
    forms.setdefault("password_form", PasswordForm())
    forms.setdefault("token_form", TokenForm())
    return render_template(
        "accounts/account.html",
        tokens=ops.user_api_tokens(current_user),
        sessions=ops.live_sessions(current_user),
        current_session_id=getattr(_current_session(), "id", None),
        confirm_form=ConfirmForm(),
        new_token=session.pop("new_token", None),
        **forms,
    ), status


def _current_session():
    found = ops.resolve_session(current_user.session_key) if current_user.session_key else None
    return found[1] if found else None


@bp.get("/account")
@login_required
def account():
    return _account_page()


@bp.post("/account/profile")
@login_required
def update_profile():
    form = ProfileForm()
    if not form.validate():
        return _account_page(422, profile_form=form)
    try:
        ops.update_user(current_user, name=form.name.data, locale=form.locale.data)
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _account_page(422, profile_form=form)
    session.pop("lang", None)  # the saved preference now decides
    db.session.commit()
    flash(_("Your profile is saved."), "success")
    return redirect(url_for("accounts.account"))


@bp.post("/account/password")
@login_required
def change_password():
    form = PasswordForm()
    if not form.validate():
        return _account_page(422, password_form=form)
    try:
        ops.set_password(
            current_user, form.new_password.data, current_password=form.current_password.data
        )
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _account_page(422, password_form=form)
    # Every session ended, this one included: continue in a fresh one.
    key = ops.start_session(
        current_user, lifetime=session_lifetime(), user_agent=request.user_agent.string
    )
    db.session.commit()
    user = current_user._get_current_object()
    session.clear()
    session.permanent = True
    user.session_key = key
    login_user(user)
    flash(_("Your password is changed. Other devices were signed out."), "success")
    return redirect(url_for("accounts.account"))


@bp.post("/account/tokens")
@login_required
def create_token():
    form = TokenForm()
    if not form.validate():
        return _account_page(422, token_form=form)
    try:
        _token, plain = ops.create_api_token(
            current_user, form.name.data, expires_in_days=form.expires_in_days.data
        )
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _account_page(422, token_form=form)
    db.session.commit()
    # Shown once, on the next page view, then gone from the session.
    session["new_token"] = plain
    return redirect(url_for("accounts.account"))


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    if ConfirmForm().validate_on_submit():
        ops.revoke_api_token(current_user, token_id)
        db.session.commit()
        flash(_("The token is revoked."), "success")
    return redirect(url_for("accounts.account"))


@bp.post("/account/sessions/<int:session_id>/revoke")
@login_required
def revoke_session(session_id: int):
    if ConfirmForm().validate_on_submit():
        ops.revoke_session(current_user, session_id)
        db.session.commit()
        flash(_("The session is ended."), "success")
    return redirect(url_for("accounts.account"))


# --- administration: organizations ----------------------------------------------------------


@admin_bp.get("/")
@login_required
def index():
    return redirect(url_for("admin.organizations"))


@admin_bp.get("/organizations")
@login_required
def organizations():
    orgs = db.session.scalars(
        policies.visible(current_user, Organization).order_by(Organization.name)
    ).all()
    return render_template(
        "accounts/organizations.html",
        organizations=orgs,
        can_create=policies.can_manage_organizations(current_user),
    )


@admin_bp.route("/organizations/new", methods=["GET", "POST"])
@login_required
def new_organization():
    policies.require(policies.can_manage_organizations(current_user))
    form = OrganizationForm()
    if form.validate_on_submit():
        try:
            org = ops.create_organization(
                name=form.name.data,
                slug=form.slug.data,
                kind=form.kind.data,
                phone=form.phone.data,
                website=form.website.data,
                description=form.description.data,
            )
        except ValidationFailed as exc:
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(_("The organization is created."), "success")
            return redirect(url_for("admin.organization", org_id=org.id))
    return render_template("accounts/organization_form.html", form=form, org=None), (
        422 if form.errors else 200
    )


@admin_bp.get("/organizations/<int:org_id>")
@login_required
def organization(org_id: int):
    org = policies.get_visible_or_404(current_user, Organization, org_id)
    members = db.session.scalars(
        policies.visible(current_user, User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organization_id == org.id)
        .order_by(User.name)
    ).all()
    return render_template(
        "accounts/organization.html",
        org=org,
        members=members,
        can_edit=policies.can_manage_organizations(current_user),
        can_manage_members=policies.can_manage_members(current_user, org),
    )


@admin_bp.route("/organizations/<int:org_id>/edit", methods=["GET", "POST"])
@login_required
def edit_organization(org_id: int):
    org = policies.get_visible_or_404(current_user, Organization, org_id)
    policies.require(policies.can_manage_organizations(current_user))
    form = OrganizationForm(obj=org)
    if request.method == "GET":
        form.kind.data = org.kind.value
    if form.validate_on_submit():
        try:
            ops.update_organization(
                org,
                name=form.name.data,
                slug=form.slug.data,
                kind=form.kind.data,
                phone=form.phone.data,
                website=form.website.data,
                description=form.description.data,
                is_active=form.is_active.data,
            )
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(_("The organization is saved."), "success")
            return redirect(url_for("admin.organization", org_id=org.id))
    return render_template("accounts/organization_form.html", form=form, org=org), (
        422 if form.errors else 200
    )


# --- administration: users ------------------------------------------------------------------


def _manageable_org_choices():
    stmt = policies.visible(current_user, Organization).order_by(Organization.name)
    return options(
        (org.id, org.name)
        for org in db.session.scalars(stmt)
        if policies.can_manage_members(current_user, org)
    )


@admin_bp.get("/users")
@login_required
def users():
    query = (request.args.get("q") or "").strip()
    stmt = policies.visible(current_user, User).order_by(User.name)
    if query:
        like = f"%{query.lower()}%"
        stmt = stmt.where((User.email.like(like)) | (User.name.ilike(like)))
    return render_template(
        "accounts/users.html",
        users=db.session.scalars(stmt.limit(500)).all(),
        q=query,
        can_create=bool(_manageable_org_choices()),
    )


@admin_bp.route("/users/new", methods=["GET", "POST"])
@login_required
def new_user():
    choices = _manageable_org_choices()
    policies.require(bool(choices))
    form = UserCreateForm()
    form.organization_id.choices = choices
    if form.validate_on_submit():
        org = policies.get_visible_or_404(current_user, Organization, form.organization_id.data)
        policies.require(policies.can_manage_members(current_user, org))
        try:
            user = ops.create_user(
                email=form.email.data,
                name=form.name.data,
                password=form.password.data or None,
                organization=org,
                role=form.role.data,
                locale=form.locale.data or None,
            )
        except ValidationFailed as exc:
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(_("The user is created."), "success")
            return redirect(url_for("admin.user", user_id=user.id))
    form.password.data = ""
    return render_template("accounts/user_new.html", form=form), 422 if form.errors else 200


def _user_page(target: User, form: UserEditForm, membership_form: MembershipForm, status=200):
    return render_template(
        "accounts/user.html",
        target=target,
        form=form,
        membership_form=membership_form,
        confirm_form=ConfirmForm(),
        can_manage=policies.can_manage_user(current_user, target),
    ), status


@admin_bp.get("/users/<int:user_id>")
@login_required
def user(user_id: int):
    target = policies.get_visible_or_404(current_user, User, user_id)
    form = UserEditForm(obj=target, locale=target.locale or "")
    membership_form = MembershipForm()
    membership_form.organization_id.choices = _manageable_org_choices()
    return _user_page(target, form, membership_form)


@admin_bp.post("/users/<int:user_id>")
@login_required
def update_user(user_id: int):
    target = policies.get_visible_or_404(current_user, User, user_id)
    policies.require(policies.can_manage_user(current_user, target))
    form = UserEditForm()
    membership_form = MembershipForm()
    membership_form.organization_id.choices = _manageable_org_choices()
    if form.validate():
        try:
            ops.update_user(
                target,
                name=form.name.data,
                email=form.email.data,
                locale=form.locale.data,
                is_active=form.is_active.data,
            )
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(_("The user is saved."), "success")
            return redirect(url_for("admin.user", user_id=target.id))
    return _user_page(target, form, membership_form, 422)


@admin_bp.post("/users/<int:user_id>/memberships")
@login_required
def set_membership(user_id: int):
    target = policies.get_visible_or_404(current_user, User, user_id)
    form = MembershipForm()
    form.organization_id.choices = _manageable_org_choices()
    if form.validate():
        org = policies.get_visible_or_404(current_user, Organization, form.organization_id.data)
        policies.require(policies.can_manage_members(current_user, org))
        try:
            ops.set_membership(target, org, form.role.data)
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(_("The membership is saved."), "success")
            return redirect(url_for("admin.user", user_id=target.id))
    edit_form = UserEditForm(obj=target, locale=target.locale or "")
    return _user_page(target, edit_form, form, 422)


@admin_bp.post("/users/<int:user_id>/memberships/<int:membership_id>/delete")
@login_required
def remove_membership(user_id: int, membership_id: int):
    target = policies.get_visible_or_404(current_user, User, user_id)
    membership = db.session.scalar(
        policies.visible(current_user, Membership).where(
            Membership.id == membership_id, Membership.user_id == target.id
        )
    )
    if membership is None:
        raise NotFound(_("Not found."))
    policies.require(policies.can_manage_members(current_user, membership.organization))
    if ConfirmForm().validate_on_submit():
        ops.remove_membership(membership)
        db.session.commit()
        flash(_("The membership is removed."), "success")
    return redirect(url_for("admin.user", user_id=target.id))
