// The voice-supervisor playground: join a room with the agent, talk, read captions, chat,
// send commands and files, then read what the daemon stored. Plain DOM, no framework.
// Topics and attributes are the room actor's (actors/room/): captions on lk.transcription,
// the agent's state in its lk.agent.state attribute, chat on lk.chat, commands on
// agent.command answered on agent.reply, files on agent.file.
import {
  ConnectionState,
  type Participant,
  type RemoteParticipant,
  type RemoteTrack,
  Room,
  RoomEvent,
  type TextStreamReader,
  Track,
} from 'livekit-client';

const TOPIC_TRANSCRIPTION = 'lk.transcription';
const TOPIC_CHAT = 'lk.chat';
const TOPIC_COMMAND = 'agent.command';
const TOPIC_REPLY = 'agent.reply';
const TOPIC_FILE = 'agent.file';
const ATTR_SEGMENT = 'lk.segment_id';
const ATTR_FINAL = 'lk.transcription_final';
const ATTR_AGENT_STATE = 'lk.agent.state';
const TEXT_COMMANDS = new Set(['say', 'instructions']);

/** What POST /playground/token answers. */
interface Session {
  url: string;
  token: string;
  room: string;
  identity: string;
  conversation_id: string;
}

/** One stored message, as GET /playground/conversations/{id}/messages lists them. */
interface StoredMessage {
  role: string;
  content: string;
  ts: number;
  speaker: string | null;
  interrupted: boolean;
}

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`the page has no #${id}`);
  return element as T;
}

const ui = {
  joinForm: byId<HTMLFormElement>('join-form'),
  name: byId<HTMLInputElement>('name'),
  conversation: byId<HTMLInputElement>('conversation'),
  start: byId<HTMLButtonElement>('start'),
  leave: byId<HTMLButtonElement>('leave'),
  mute: byId<HTMLButtonElement>('mute'),
  status: byId<HTMLParagraphElement>('status'),
  agentState: byId<HTMLSpanElement>('agent-state'),
  roomName: byId<HTMLElement>('room-name'),
  conversationId: byId<HTMLElement>('conversation-id'),
  captions: byId<HTMLOListElement>('captions'),
  chatForm: byId<HTMLFormElement>('chat-form'),
  chatText: byId<HTMLInputElement>('chat-text'),
  commandForm: byId<HTMLFormElement>('command-form'),
  command: byId<HTMLSelectElement>('command'),
  commandText: byId<HTMLInputElement>('command-text'),
  fileForm: byId<HTMLFormElement>('file-form'),
  file: byId<HTMLInputElement>('file'),
  replies: byId<HTMLOListElement>('replies'),
  refresh: byId<HTMLButtonElement>('refresh'),
  messages: byId<HTMLTableSectionElement>('messages'),
  audio: byId<HTMLDivElement>('audio'),
};

let room: Room | null = null;
let session: Session | null = null;
let commandCount = 0;
const segments = new Map<string, HTMLLIElement>();

function setStatus(text: string, status: 'idle' | 'busy' | 'connected' | 'error'): void {
  ui.status.textContent = text;
  ui.status.dataset.status = status;
}

function report(error: unknown): void {
  console.error(error);
  setStatus(error instanceof Error ? error.message : String(error), 'error');
}

/** Runs an async handler from an event listener, showing its failure on the page. */
function guarded(handler: () => Promise<void>): () => void {
  return () => {
    handler().catch(report);
  };
}

function setInCall(inCall: boolean): void {
  ui.start.disabled = inCall;
  ui.name.disabled = inCall;
  ui.conversation.disabled = inCall;
  ui.leave.disabled = !inCall;
  ui.mute.disabled = !inCall;
  for (const form of [ui.chatForm, ui.commandForm, ui.fileForm]) {
    for (const control of form.querySelectorAll<HTMLInputElement | HTMLButtonElement>(
      'input, select, button',
    )) {
      control.disabled = !inCall;
    }
  }
}

function setAgentState(state: string): void {
  ui.agentState.textContent = state;
  ui.agentState.dataset.state = state;
}

// -- captions --------------------------------------------------------------------------------

function speaker(identity: string): { kind: 'user' | 'agent' | 'other'; label: string } {
  if (room !== null && identity === room.localParticipant.identity) {
    return { kind: 'user', label: 'You' };
  }
  const participant = room?.remoteParticipants.get(identity);
  if (participant?.isAgent) return { kind: 'agent', label: participant.name || 'Agent' };
  return { kind: 'other', label: participant?.name || identity };
}

function captionLine(key: string, identity: string, tag = ''): HTMLLIElement {
  let line = segments.get(key);
  if (line === undefined) {
    const who = speaker(identity);
    line = document.createElement('li');
    line.dataset.speaker = who.kind;
    line.dataset.identity = identity;
    line.dataset.final = 'false';
    const label = document.createElement('span');
    label.className = 'who';
    label.textContent = `${who.label}:`;
    const text = document.createElement('span');
    text.className = 'text';
    line.append(label, text);
    if (tag) {
      const small = document.createElement('span');
      small.className = 'tag';
      small.textContent = tag;
      line.append(small);
    }
    segments.set(key, line);
    ui.captions.append(line);
  }
  return line;
}

function showCaption(line: HTMLLIElement, text: string, final: boolean): void {
  if (line.dataset.final === 'true' && !final) return; // a late interim never undoes a final
  const span = line.querySelector('.text');
  if (span !== null) span.textContent = text;
  line.dataset.final = final ? 'true' : 'false';
  ui.captions.scrollTop = ui.captions.scrollHeight;
}

// Interim user captions come as separate streams with the segment's text so far; the agent's
// come as one stream per segment whose chunks are deltas, closed with final = true. Either way
// a stream's accumulated text is the segment's text.
async function readCaption(reader: TextStreamReader, identity: string): Promise<void> {
  const segment = reader.info.attributes?.[ATTR_SEGMENT] || reader.info.id;
  const line = captionLine(segment, identity);
  let text = '';
  for await (const chunk of reader) {
    text += chunk;
    showCaption(line, text, false);
  }
  showCaption(line, text, reader.info.attributes?.[ATTR_FINAL] === 'true');
}

// -- the call --------------------------------------------------------------------------------

async function requestSession(): Promise<Session> {
  const body: Record<string, string> = { name: ui.name.value.trim() };
  const conversation = ui.conversation.value.trim();
  if (conversation) body.conversation_id = conversation;
  const response = await fetch('/playground/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = (await response.json()) as Session & { error?: string };
  if (!response.ok) throw new Error(answer.error ?? `token request failed (${response.status})`);
  return answer;
}

function agentOf(current: Room): RemoteParticipant | undefined {
  return [...current.remoteParticipants.values()].find((p) => p.isAgent);
}

function wire(current: Room): void {
  current.registerTextStreamHandler(TOPIC_TRANSCRIPTION, (reader, from) => {
    readCaption(reader, from.identity).catch(report);
  });
  current
    .on(RoomEvent.TrackSubscribed, (track: RemoteTrack) => {
      if (track.kind === Track.Kind.Audio) ui.audio.append(track.attach());
    })
    .on(RoomEvent.TrackUnsubscribed, (track: RemoteTrack) => {
      for (const element of track.detach()) element.remove();
    })
    .on(RoomEvent.ParticipantConnected, (participant: RemoteParticipant) => {
      if (participant.isAgent) setAgentState(participant.attributes[ATTR_AGENT_STATE] ?? 'joined');
    })
    .on(RoomEvent.ParticipantDisconnected, (participant: RemoteParticipant) => {
      if (participant.isAgent) setAgentState('left the room');
    })
    .on(RoomEvent.ParticipantAttributesChanged, (changed: Record<string, string>, p: Participant) => {
      if (p.isAgent && ATTR_AGENT_STATE in changed) setAgentState(changed[ATTR_AGENT_STATE]);
    })
    .on(RoomEvent.DataReceived, (payload, _participant, _kind, topic) => {
      if (topic === TOPIC_REPLY) showReply(new TextDecoder().decode(payload));
    })
    .on(RoomEvent.ConnectionStateChanged, (state: ConnectionState) => {
      if (state === ConnectionState.Reconnecting) setStatus('Reconnecting…', 'busy');
      if (state === ConnectionState.Connected) setStatus('Connected: speak to the agent.', 'connected');
    })
    .on(RoomEvent.Disconnected, () => {
      room = null;
      setInCall(false);
      setStatus('Call ended.', 'idle');
      setAgentState('not in the room');
      loadMessages().catch(report);
    });
}

async function startCall(): Promise<void> {
  ui.start.disabled = true;
  setStatus('Opening a room…', 'busy');
  try {
    session = await requestSession();
    ui.roomName.textContent = session.room;
    ui.conversationId.textContent = session.conversation_id;
    ui.conversation.value = session.conversation_id;
    ui.refresh.disabled = false;
    const current = new Room();
    wire(current);
    room = current;
    setStatus('Joining…', 'busy');
    await current.connect(session.url, session.token);
    await current.startAudio(); // inside the click: browsers allow playback from here on
    await current.localParticipant.setMicrophoneEnabled(true);
    const agent = agentOf(current);
    if (agent !== undefined) setAgentState(agent.attributes[ATTR_AGENT_STATE] ?? 'joined');
    else setAgentState('joining…');
    setInCall(true);
    setStatus('Connected: speak to the agent.', 'connected');
  } catch (error) {
    const current = room;
    room = null;
    setInCall(false);
    if (current !== null) await current.disconnect();
    throw error;
  }
}

async function toggleMute(): Promise<void> {
  if (room === null) return;
  const enabled = room.localParticipant.isMicrophoneEnabled;
  await room.localParticipant.setMicrophoneEnabled(!enabled);
  ui.mute.textContent = enabled ? 'Unmute mic' : 'Mute mic';
}

// -- chat, commands, files -------------------------------------------------------------------

async function sendChat(): Promise<void> {
  const text = ui.chatText.value.trim();
  if (room === null || !text) return;
  const info = await room.localParticipant.sendText(text, { topic: TOPIC_CHAT });
  showCaption(captionLine(info.id, room.localParticipant.identity, 'chat'), text, true);
  ui.chatText.value = '';
}

function addReply(text: string, ok?: boolean): void {
  const line = document.createElement('li');
  line.textContent = text;
  if (ok !== undefined) line.dataset.ok = String(ok);
  ui.replies.append(line);
}

function showReply(raw: string): void {
  try {
    const { id, ok, error, ...rest } = JSON.parse(raw) as Record<string, unknown>;
    const details = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
    addReply(ok ? `✓ ${String(id)}${details}` : `✗ ${String(id)}: ${String(error)}`, ok === true);
  } catch {
    addReply(`? ${raw}`, false);
  }
}

async function sendCommand(): Promise<void> {
  if (room === null) return;
  commandCount += 1;
  const command: Record<string, string> = { id: `cmd-${commandCount}`, command: ui.command.value };
  if (TEXT_COMMANDS.has(command.command)) command.text = ui.commandText.value.trim();
  const payload = new TextEncoder().encode(JSON.stringify(command));
  await room.localParticipant.publishData(payload, { reliable: true, topic: TOPIC_COMMAND });
  addReply(`→ ${command.id} ${command.command}`);
}

async function sendFile(): Promise<void> {
  const file = ui.file.files?.[0];
  if (room === null || file === undefined) return;
  const mimeType = file.type || 'application/octet-stream';
  const { id } = await room.localParticipant.sendFile(file, { topic: TOPIC_FILE, mimeType });
  addReply(`→ ${id} file ${file.name} (${file.size} bytes, ${mimeType})`);
  ui.file.value = '';
}

// -- stored messages -------------------------------------------------------------------------

function cell(row: HTMLTableRowElement, text: string): void {
  const td = document.createElement('td');
  td.textContent = text;
  row.append(td);
}

async function loadMessages(): Promise<void> {
  const conversation = session?.conversation_id ?? ui.conversation.value.trim();
  if (!conversation) return;
  const response = await fetch(
    `/playground/conversations/${encodeURIComponent(conversation)}/messages`,
  );
  const answer = (await response.json()) as { messages?: StoredMessage[]; error?: string };
  if (!response.ok || answer.messages === undefined) {
    throw new Error(answer.error ?? `reading the stored messages failed (${response.status})`);
  }
  ui.messages.replaceChildren();
  for (const message of answer.messages) {
    const row = document.createElement('tr');
    row.dataset.role = message.role;
    cell(row, new Date(message.ts * 1000).toLocaleTimeString());
    cell(row, message.role);
    cell(row, message.speaker ?? '');
    cell(row, message.content + (message.interrupted ? ' (interrupted)' : ''));
    ui.messages.append(row);
  }
  if (!answer.messages.length) {
    const row = document.createElement('tr');
    const td = document.createElement('td');
    td.colSpan = 4;
    td.className = 'empty';
    td.textContent = 'No stored messages in this conversation.';
    row.append(td);
    ui.messages.append(row);
  }
  ui.messages.dataset.loaded = String(answer.messages.length);
}

// -- wiring ----------------------------------------------------------------------------------

function onSubmit(form: HTMLFormElement, handler: () => Promise<void>): void {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    guarded(handler)();
  });
}

onSubmit(ui.joinForm, startCall);
onSubmit(ui.chatForm, sendChat);
onSubmit(ui.commandForm, sendCommand);
onSubmit(ui.fileForm, sendFile);
ui.leave.addEventListener('click', guarded(async () => room?.disconnect()));
ui.mute.addEventListener('click', guarded(toggleMute));
ui.refresh.addEventListener('click', guarded(loadMessages));
ui.conversation.addEventListener('input', () => {
  ui.refresh.disabled = !ui.conversation.value.trim();
});
setInCall(false);
document.body.dataset.ready = 'true';
