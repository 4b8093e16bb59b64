"""The composition root: :class:`FakeTelegramServer` wires the parts around one shared state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .answers import Answers
from .app import HttpApi
from .chats import ChatLog, new_media_group_id
from .dispatch import MethodTable
from .editing import Editor
from .faults import FaultInjector
from .files import FileStore
from .inspection import Inspector
from .profile import BotProfile
from .sending import Sender
from .state import ServerState
from .updates import UpdateQueue
from .uploads import Uploads
from .user_media import MediaBuilder
from .user_side import UserSide
from .webhook import Webhook


class FakeTelegramServer(ServerState):
    """Bot API over HTTP on 127.0.0.1 with an ephemeral port; an async context manager.

    ``local_dir`` switches on the local Bot API server mode (``TelegramAPIServer(is_local=
    True)``): getFile writes the file there and returns its absolute path, with no 20 MB
    limit, and ``file://`` paths are accepted as uploads.

    The server is the state all parts share (tests read its records directly); the parts
    (method handlers, HTTP app, builders, inspection) are composed here, and their test-facing
    methods are re-exported as attributes, so tests keep calling ``telegram.send_photo(...)``.
    """

    new_media_group_id = staticmethod(new_media_group_id)

    def __init__(
        self,
        token: str = "123456:TEST-fake-telegram-token",
        *,
        bot_username: str = "image_finder_test_bot",
        bot_name: str = "Image Finder",
        host: str = "127.0.0.1",
        port: int = 0,
        local_dir: Path | None = None,
        supports_inline_queries: bool = True,
        can_read_all_group_messages: bool = False,
    ) -> None:
        super().__init__(
            token,
            bot_username=bot_username,
            bot_name=bot_name,
            host=host,
            port=port,
            local_dir=local_dir,
            supports_inline_queries=supports_inline_queries,
            can_read_all_group_messages=can_read_all_group_messages,
        )
        chats = ChatLog(self)
        faults = FaultInjector(self)
        files = FileStore(self, faults)
        uploads = Uploads(self, files)
        updates = UpdateQueue(self)
        methods = MethodTable(self)
        self._webhook = Webhook(self, updates, methods.run_webhook_reply)
        profile = BotProfile(self, chats)
        methods.register(profile.handlers())
        methods.register(updates.handlers())
        methods.register(self._webhook.handlers())
        methods.register(Sender(self, chats, uploads).handlers())
        methods.register(files.handlers())
        methods.register(Answers(self).handlers())
        methods.register(Editor(chats, uploads).handlers())
        self._faults = faults
        self._http = HttpApi(self, methods, faults, files)
        people = UserSide(self, chats, updates)
        self._expose_user_side(people, MediaBuilder(self, files, people, updates))
        self._expose_records(chats, files, updates, profile)
        self._expose_inspection(Inspector(self, updates))
        self._expose_faults(faults)

    def _expose_user_side(self, people: UserSide, media: MediaBuilder) -> None:
        """The builders tests act as users with."""
        self.user = people.user
        self.group = people.group
        self.member = people.member
        self.service_message = people.service_message
        self.send_text = people.send_text
        self.send_command = people.send_command
        self.press_button = people.press_button
        self.press_stale = people.press_stale
        self.inline_query = people.inline_query
        self.send_photo = media.send_photo
        self.send_document = media.send_document
        self.send_video = media.send_video
        self.send_animation = media.send_animation
        self.send_video_note = media.send_video_note
        self.send_album = media.send_album

    def _expose_records(
        self, chats: ChatLog, files: FileStore, updates: UpdateQueue, profile: BotProfile
    ) -> None:
        """Direct access to messages, files and updates, for tests that set up odd cases."""
        self.push_update = updates.push
        self.update_record = updates.record
        self.new_message = chats.new_message
        self.is_deleted = chats.is_deleted
        self.chat_history = chats.chat_history
        self.register_photo = files.register_photo
        self.register_file = files.register_file
        self.set_file_size = files.set_file_size
        self.commands_for = profile.commands_for
        # The names older tests and helpers still use.
        self._new_message = chats.new_message
        self._register_photo = files.register_photo
        self._register_file = files.register_file

    def _expose_inspection(self, inspector: Inspector) -> None:
        """What tests read and await of the bot's traffic."""
        self.mark = inspector.mark
        self.calls_of = inspector.calls_of
        self.wait_call = inspector.wait_call
        self.polls_in_flight = inspector.polls_in_flight
        self.wait_poll = inspector.wait_poll
        self.messages = inspector.messages
        self.next_message = inspector.next_message
        self.next_messages = inspector.next_messages
        self.wait_message = inspector.wait_message
        self.wait_edit = inspector.wait_edit
        self.wait_callback_answer = inspector.wait_callback_answer
        self.wait_inline_answer = inspector.wait_inline_answer
        self.wait_delivered = inspector.wait_delivered
        self.wait_confirmed = inspector.wait_confirmed
        self.pending_updates = inspector.pending_updates
        self.unanswered_callbacks = inspector.unanswered_callbacks
        self.assert_clean = inspector.assert_clean

    def _expose_faults(self, faults: FaultInjector) -> None:
        """How tests make Telegram misbehave."""
        self.fail = faults.fail
        self.fail_retry_after = faults.fail_retry_after
        self.fail_blocked = faults.fail_blocked
        self.fail_not_modified = faults.fail_not_modified
        self.drop_connection = faults.drop_connection
        self.enforce_flood_limits = faults.enforce_flood_limits
        self.hold = faults.hold
        self.block = faults.block
        self.unblock = faults.unblock

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeTelegramServer:
        await self._http.start()
        return self

    async def close(self) -> None:
        self.closing = True
        self.notify()
        self._faults.release_all()
        await self._webhook.stop()
        await self._http.stop()

    async def __aenter__(self) -> FakeTelegramServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """Base URL, e.g. for ``TELEGRAM_API_BASE`` or ``TelegramAPIServer.from_base``."""
        return f"http://{self.host}:{self.port}"

    def api_server(self) -> Any:
        """aiogram's ``TelegramAPIServer`` for this fake (local mode when ``local_dir``)."""
        from aiogram.client.telegram import TelegramAPIServer

        return TelegramAPIServer.from_base(self.url, is_local=self.local_dir is not None)

    def make_bot(self, **kwargs: Any) -> Any:
        """An ``aiogram.Bot`` wired to this fake through the real aiohttp session."""
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession

        return Bot(self.token, session=AiohttpSession(api=self.api_server()), **kwargs)
