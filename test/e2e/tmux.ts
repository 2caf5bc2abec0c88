/**
 * Driving an interactive custos in a real terminal: a detached tmux session of fixed size on a
 * private server socket, keys sent with send-keys, the screen read with capture-pane and polled
 * until the expected text appears. A wait that times out fails with the whole pane, so a
 * failing run shows what the person at the terminal would have seen.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Single-quotes a word for sh. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface WaitOptions {
  /** Give up after this long (ms). */
  timeout?: number;
  /**
   * Wait until the pattern matches at least this many times (a prompt asked again, a line
   * repeated).
   */
  count?: number;
}

export const SLOW = 60_000;

export class Tmux {
  readonly socket = `custos-e2e-${process.pid}-${randomBytes(4).toString('hex')}`;
  private sessions = 0;
  /** The session keys go to. */
  session = '';

  constructor(
    private readonly scratch: string,
    readonly size = { width: 250, height: 60 },
  ) {}

  private tmux(args: string[], check = true): string {
    const r = spawnSync('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        LANG: 'C.UTF-8',
        TERM: 'xterm-256color',
        HOME: this.scratch,
      },
    });
    if (r.error) throw r.error;
    if (check && r.status !== 0)
      throw new Error(`tmux ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  }

  /**
   * Starts `argv` in a new session, in `cwd`, with exactly `env` (env -i), through a script file
   * so that no PIN reaches tmux's own argv. The shell prints EXIT=<status> when it ends and then
   * keeps the pane open.
   */
  start(opts: { cwd: string; env: Record<string, string>; argv: string[] }): void {
    this.sessions += 1;
    this.session = `s${this.sessions}`;
    const script = join(this.scratch, `tmux-${this.session}-${randomBytes(3).toString('hex')}.sh`);
    const assignments = Object.entries(opts.env)
      .map(([k, v]) => `${k}=${shellQuote(v)}`)
      .join(' ');
    writeFileSync(
      script,
      [
        'cd ' + shellQuote(opts.cwd) + ' || exit 99',
        `env -i ${assignments} ${opts.argv.map(shellQuote).join(' ')}`,
        'echo "EXIT=$?"',
        'sleep 3600',
        '',
      ].join('\n'),
      { mode: 0o700 },
    );
    this.tmux([
      'new-session',
      '-d',
      '-s',
      this.session,
      '-x',
      String(this.size.width),
      '-y',
      String(this.size.height),
      `sh ${shellQuote(script)}`,
    ]);
    // the pane keeps its size even though no client is attached
    this.tmux(['set-option', '-t', this.session, 'history-limit', '20000']);
  }

  /** Named keys (Enter, Down, C-c) or several at once. */
  keys(...keys: string[]): void {
    this.tmux(['send-keys', '-t', this.session, ...keys]);
  }

  /** Literal text, as typed (nothing in it is taken for a key name). */
  type(text: string): void {
    this.tmux(['send-keys', '-t', this.session, '-l', text]);
  }

  /**
   * Pastes text into the pane through a tmux buffer (fed on stdin, so it never appears in any
   * argv).
   */
  paste(text: string): void {
    const name = `paste-${randomBytes(3).toString('hex')}`;
    const r = spawnSync(
      'tmux',
      ['-L', this.socket, '-f', '/dev/null', 'load-buffer', '-b', name, '-'],
      {
        input: text,
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: this.scratch },
      },
    );
    if (r.status !== 0) throw new Error(`tmux load-buffer exited ${r.status}: ${r.stderr}`);
    this.tmux(['paste-buffer', '-d', '-b', name, '-t', this.session]);
  }

  /** The whole pane, history included, wrapped lines joined. */
  screen(): string {
    return this.tmux(['capture-pane', '-p', '-J', '-S', '-20000', '-t', this.session]);
  }

  /** What the person sees now: the visible rows of the pane only, wrapped lines joined. */
  visible(): string {
    return this.tmux(['capture-pane', '-p', '-J', '-t', this.session]);
  }

  /**
   * Every line the pane ever showed (history included) that the terminal had to wrap: wider than
   * the pane. tmux joins a wrapped line back together (-J), so its length shows it.
   */
  wideLines(): string[] {
    return this.screen()
      .split('\n')
      .map((l) => l.trimEnd())
      .filter((l) => [...l].length > this.size.width);
  }

  /** Escape, as a key of its own (readline waits half a second to tell it from a sequence). */
  async escape(): Promise<void> {
    this.keys('Escape');
    await new Promise((r) => setTimeout(r, 700));
  }

  /**
   * Answers the input prompt `message` with a wrong `text`: the refusal `error` must show under
   * the prompt, which stays, with no tick for it; the line is then cleared for the next try.
   */
  async refused(
    message: string,
    text: string,
    error: RegExp | string,
    opts: WaitOptions = {},
  ): Promise<string> {
    const prompt = await this.waitFor(new RegExp(`^\\? ${escape(message)}`, 'm'), opts);
    const before = countOf(prompt, new RegExp(`^✔ ${escape(message)}`, 'gm'));
    const wanted =
      typeof error === 'string'
        ? new RegExp(`^✘ ${escape(error)}`, 'gm')
        : new RegExp(error.source, error.flags.includes('g') ? error.flags : `${error.flags}g`);
    const shown = countOf(prompt, wanted);
    if (text) this.type(text);
    this.keys('Enter');
    const screen = await this.waitFor(wanted, { ...opts, count: shown + 1 });
    if (countOf(this.screen(), new RegExp(`^✔ ${escape(message)}`, 'gm')) !== before)
      throw new Error(`"${message}" was ticked for a refused answer:\n${screen}`);
    this.keys('C-u');
    return screen;
  }

  /**
   * Polls the pane until `pattern` matches (`count` times); fails with the pane if it does not in
   * time.
   */
  async waitFor(pattern: RegExp | string, opts: WaitOptions = {}): Promise<string> {
    const timeout = opts.timeout ?? 30_000;
    const count = opts.count ?? 1;
    const re =
      typeof pattern === 'string'
        ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g')
        : new RegExp(
            pattern.source,
            pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`,
          );
    const deadline = Date.now() + timeout;
    for (;;) {
      const screen = this.screen();
      if ((screen.match(re) ?? []).length >= count) return screen;
      if (Date.now() > deadline) {
        throw new Error(
          `waited ${timeout} ms for ${re}${count > 1 ? ` (x${count})` : ''} in tmux session ${this.session}; the pane shows:\n${screen.replace(/\n+$/, '')}`,
        );
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  }

  /** The exit status the session's shell printed, once it has. */
  async exitStatus(timeout = SLOW): Promise<number> {
    const screen = await this.waitFor(/^EXIT=\d+$/m, { timeout });
    return Number(/^EXIT=(\d+)$/m.exec(screen)?.[1]);
  }

  /**
   * In the active select prompt (the last `? message` on screen), moves the cursor to the choice
   * whose text starts with `choice` and selects it. Returns the choices the prompt offered.
   */
  async select(message: string, choice: string, opts: WaitOptions = {}): Promise<string[]> {
    const screen = await this.waitFor(
      new RegExp(`^\\? ${escape(message)}\\n(?:[❯ ] .*\\n)+`, 'm'),
      opts,
    );
    const choices = activeChoices(screen, message);
    const at = choices.findIndex((c) => c.startsWith(choice));
    if (at < 0)
      throw new Error(
        `"${choice}" is not offered by "${message}"; the choices are:\n${choices.join('\n')}\n--- pane:\n${screen}`,
      );
    for (let i = 0; i < at; i++) this.keys('Down');
    await this.waitFor(new RegExp(`^❯ ${escape(choice)}`, 'm'), opts);
    this.keys('Enter');
    await this.waitFor(new RegExp(`^✔ ${escape(message)} ${escape(choice)}`, 'm'), {
      ...opts,
      count: countOf(screen, new RegExp(`^✔ ${escape(message)} ${escape(choice)}`, 'gm')) + 1,
    });
    return choices;
  }

  /** Answers the active input prompt `message` with `text` (typed literally) and Enter. */
  async answer(message: string, text: string, opts: WaitOptions = {}): Promise<void> {
    const screen = await this.waitFor(new RegExp(`^\\? ${escape(message)}`, 'm'), opts);
    const done = new RegExp(`^✔ ${escape(message)}`, 'gm');
    const before = countOf(screen, done);
    if (text) this.type(text);
    this.keys('Enter');
    await this.waitFor(done, { ...opts, count: before + 1 });
  }

  /** Ends the server and every session on it, and removes its socket file. */
  kill(): void {
    this.tmux(['kill-server'], false);
    const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
    rmSync(join('/tmp', `tmux-${uid}`, this.socket), { force: true });
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function countOf(text: string, re: RegExp): number {
  return (text.match(re) ?? []).length;
}

/** The choices listed under the last active `? message` line. */
export function activeChoices(screen: string, message: string): string[] {
  const lines = screen.split('\n');
  let start = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i] === `? ${message}`) {
      start = i;
      break;
    }
  }
  if (start < 0) return [];
  const out: string[] = [];
  for (const line of lines.slice(start + 1)) {
    const m = /^[❯ ] (.*)$/.exec(line);
    if (!m) break;
    out.push((m[1] as string).trimEnd());
  }
  return out;
}
