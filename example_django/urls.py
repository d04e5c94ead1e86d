from django.contrib.auth import views as auth_views
from django.urls import path

from example_django.assistant import views

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="assistant/login.html", extra_context=views.login_context()
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("summarize/", views.summarize, name="summarize"),
    path("chat/", views.chat, name="chat"),
    path("reply/", views.ReplyView.as_view(), name="reply"),
    path("usage/", views.usage, name="usage"),
]
