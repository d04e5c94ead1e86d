from django.apps import AppConfig


class ProjectConfig(AppConfig):
    name = "tests.django.project"
    label = "project"
