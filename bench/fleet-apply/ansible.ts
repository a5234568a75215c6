import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FarmNode } from './farm.js';

/**
 * The Ansible side of the comparison: the same job as `edgectl apply` on the same nodes,
 * written the way a tuned Ansible setup would do it (pipelining, ControlPersist, no fact
 * gathering, an explicit interpreter, a known_hosts file with host key checking on).
 *
 * Per node, from the bundle edgectl rendered for it: template nginx.conf and conf.d/*.conf,
 * copy mime.types, agent.json and the static payloads into a staging tree, validate the whole
 * staged tree with `nginx -t` (not `validate: nginx -t -c %s`, which checks one temp file and
 * breaks on include trees, ansible#19243), promote it to `current/` and reload nginx (or start
 * it) in a handler. Validation and promotion run only when something was staged, so a run
 * with nothing to change does the least Ansible can do: stat every file.
 */
export interface AnsibleSetup {
  dir: string;
  cfg: string;
  inventory: string;
  playbook: string;
  controlDir: string;
}

const PLAYBOOK = `- name: Push the rendered edge config (the job edgectl apply does)
  hosts: edge
  gather_facts: false
  tasks:
    - name: Node directories
      ansible.builtin.file:
        path: "{{ node_root }}/{{ item }}"
        state: directory
        mode: "0755"
      # file: state=directory creates parents; copy to a dest ending in / creates its own.
      loop: [log, run, cache, tmp, stage/nginx/conf.d]

    - name: Template nginx.conf
      ansible.builtin.template:
        src: "{{ bundle_dir }}/nginx/nginx.conf"
        dest: "{{ node_root }}/stage/nginx/nginx.conf"
        mode: "0644"
      register: main_conf

    - name: Template one server file per app
      ansible.builtin.template:
        src: "{{ item }}"
        dest: "{{ node_root }}/stage/nginx/conf.d/{{ item | basename }}"
        mode: "0644"
      loop: "{{ query('ansible.builtin.fileglob', bundle_dir + '/nginx/conf.d/*.conf') }}"
      register: app_confs

    - name: Copy mime.types and the agent config
      ansible.builtin.copy:
        src: "{{ bundle_dir }}/{{ item }}"
        dest: "{{ node_root }}/stage/{{ item | dirname }}/"
        mode: "0644"
      loop: [nginx/mime.types, agent/agent.json]
      register: plain_files

    - name: Copy the static sites
      ansible.builtin.copy:
        src: "{{ bundle_dir }}/apps/"
        dest: "{{ node_root }}/stage/apps/"
        mode: "0644"
      register: payloads

    - name: Validate the whole staged tree with nginx -t
      ansible.builtin.command:
        argv: [nginx, -t, -q, -p, "{{ node_root }}/", -c, "{{ node_root }}/stage/nginx/nginx.conf"]
      changed_when: false
      when: main_conf is changed or app_confs is changed or plain_files is changed or payloads is changed

    - name: Promote the staged tree to current
      ansible.builtin.command:
        argv: [rsync, -a, --delete, "{{ node_root }}/stage/", "{{ node_root }}/current/"]
      when: main_conf is changed or app_confs is changed or plain_files is changed or payloads is changed
      notify: Reload nginx

  handlers:
    - name: Reload nginx
      ansible.builtin.shell: |
        set -e
        if [ -s run/nginx.pid ] && kill -0 "$(cat run/nginx.pid)" 2>/dev/null; then
          nginx -p "$PWD/" -c "$PWD/current/nginx/nginx.conf" -s reload
        else
          nginx -p "$PWD/" -c "$PWD/current/nginx/nginx.conf"
        fi
      args:
        chdir: "{{ node_root }}"
`;

export async function writeAnsible(dir: string, opts: {
  nodes: FarmNode[];
  roots: Map<string, string>;
  bundles: string;
  clientKey: string;
  knownHosts: string;
  forks: number;
  /** ansible_ssh_common_args for every host (wan.ts: a ProxyCommand through the relay's master connection). */
  sshCommonArgs?: string;
}): Promise<AnsibleSetup> {
  const controlDir = path.join(dir, 'cp');
  await mkdir(controlDir, { recursive: true });
  await mkdir(path.join(dir, 'local-tmp'), { recursive: true });
  await mkdir(path.join(dir, 'remote-tmp'), { recursive: true });
  const cfg = path.join(dir, 'ansible.cfg');
  const sshArgs = [
    '-o ControlMaster=auto',
    '-o ControlPersist=120s',
    `-o UserKnownHostsFile=${opts.knownHosts}`,
    '-o StrictHostKeyChecking=yes',
    '-o IdentitiesOnly=yes',
    '-o PreferredAuthentications=publickey',
  ].join(' ');
  await writeFile(cfg, `[defaults]
inventory = ${path.join(dir, 'inventory.json')}
forks = ${opts.forks}
host_key_checking = True
gathering = explicit
retry_files_enabled = False
interpreter_python = /usr/bin/python3
local_tmp = ${path.join(dir, 'local-tmp')}
remote_tmp = ${path.join(dir, 'remote-tmp')}
deprecation_warnings = False
nocows = True

[ssh_connection]
pipelining = True
ssh_args = ${sshArgs}
control_path_dir = ${controlDir}
control_path = %(directory)s/%%C
`);
  const hosts: Record<string, Record<string, string>> = {};
  for (const n of opts.nodes) {
    hosts[n.name] = {
      ansible_host: n.address,
      ansible_port: '22',
      ansible_user: 'root',
      ansible_ssh_private_key_file: opts.clientKey,
      node_root: opts.roots.get(n.name)!,
      bundle_dir: path.join(opts.bundles, n.name),
      ...(opts.sshCommonArgs ? { ansible_ssh_common_args: opts.sshCommonArgs } : {}),
    };
  }
  const inventory = path.join(dir, 'inventory.json');
  await writeFile(inventory, JSON.stringify({ all: { children: { edge: { hosts } } } }, null, 1));
  const playbook = path.join(dir, 'site.yml');
  await writeFile(playbook, PLAYBOOK);
  return { dir, cfg, inventory, playbook, controlDir };
}

/** Reads the PLAY RECAP: hosts, and totals of ok/changed/failed/unreachable. */
export function parseRecap(stdout: string): { hosts: number; ok: number; changed: number; failed: number; unreachable: number } {
  const r = { hosts: 0, ok: 0, changed: 0, failed: 0, unreachable: 0 };
  const at = stdout.lastIndexOf('PLAY RECAP');
  if (at < 0) return r;
  for (const line of stdout.slice(at).split('\n')) {
    const m = /^\S+\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/.exec(line);
    if (!m) continue;
    r.hosts++;
    r.ok += Number(m[1]);
    r.changed += Number(m[2]);
    r.unreachable += Number(m[3]);
    r.failed += Number(m[4]);
  }
  return r;
}
