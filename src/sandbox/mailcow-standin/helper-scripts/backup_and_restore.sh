#!/usr/bin/env bash
# Stand-in for mailcow-dockerized's helper-scripts/backup_and_restore.sh (test fixture only).
#
# Keeps the real script's contract (arguments, environment checks, prompts, menus, output layout,
# unreliable exit status) but the "docker volumes" are plain folders: ../volumes/<x>-vol-1/.
# Real `tar` + `zstd --rsyncable` are used, so archives behave like the real ones for rsync/zstd -t.
#
# Differences from the real script, on purpose:
#  - prompts are printed on stdout even when stdin is not a terminal (the real `read -p` prints
#    NOTHING when stdin is a pipe); set STANDIN_PROMPTS=tty to get the real `read -p` behaviour.
#  - end of input while a menu/location prompt waits: the real one loops forever, re-reading
#    nothing at full speed; this one waits forever without the spinning (`exec sleep`).
#  - restore empties the volume folder before extracting.
# Archives hold absolute paths as the real ones do (tar -P: /vmail/..., /crypt/..., /backup_mariadb/...),
# written and extracted inside `docker run`, whose fake maps those paths to the volume folders.
#
# Test knobs (environment):
#  STANDIN_NO_DOCKER=1             docker "not in PATH": backup/restore exit 1 where the real one checks
#  STANDIN_NO_IMAGE=1              backup image unavailable (no network, not cached): exit 1 early
#  STANDIN_FAIL_COMPONENT=x[,y]    that component's archive is not written; the run still exits 0
#  STANDIN_HANG_COMPONENT=x        that component's container never ends (its compressor hangs once
#                                  the archive is written, as a tar on a dead filesystem would; in a
#                                  restore, once the archive is extracted)
#  STANDIN_TRUNCATE_COMPONENT=x[,y] archive written then truncated to half its size; exit 0
#  STANDIN_ARCH=aarch64            pretend `uname -m` says this
#  STANDIN_PROMPTS=tty             real `read -p` semantics (prompt on stderr, only if stdin is a tty)
#  STANDIN_DATASET_ORDER=sorted    dataset menu in sorted order instead of a random one
#  STANDIN_SLOW_SECONDS=N          sleep N seconds before each component (to test timeouts/locks)
#  STANDIN_EXTRA_PROMPT=TEXT       after the dataset choice, a looping question no wrapper knows
#                                  (as a newer mailcow might add); end of input there waits forever
#  STANDIN_PRINT_SECRETS=1         print mailcow.conf's DB passwords, as a failing mysqldump can
#  STANDIN_FAIL_MARIABACKUP=1      (real datadir only) `mariabackup --backup` cannot reach the server;
#                                  as in the real script (commands joined with ';') the archive is
#                                  still written, holding a datadir that does not prepare
# A mysql volume that is a real MariaDB datadir (the sandbox's realDatabase option) is backed up as
# the real script does it: mariabackup --backup against the running server, --prepare, tar of
# /backup_mariadb. Nothing runs the server here, so the stand-in starts a throwaway mariadbd on the
# volume (private socket, no network) for the backup's duration, as mysql-mailcow would be running.
# Every simulated docker action is appended to $MAILCOW_PATH/standin-actions.log. Backups run each
# component in `docker run --name mailcow-backup --rm …` like the real script, and a restore stops
# and starts mailcow's containers with the real script's own docker calls (`docker stop $(docker ps
# -qf name=dovecot-mailcow)` …, `docker compose -f … down`/`up -d` for SQL), so they need the fake
# docker CLI (src/sandbox/fake-bin) on PATH and STANDIN_MAILCOW_PATH set; it keeps the containers'
# state and logs each action.

DEBIAN_DOCKER_IMAGE="ghcr.io/mailcow/backup:latest"

SCRIPT_DIR="$( cd "$( dirname "${BASH_SOURCE[0]}" )" && pwd )"
MAILCOW_PATH="$( cd "${SCRIPT_DIR}/.." && pwd )"
ACTION_LOG="${MAILCOW_PATH}/standin-actions.log"
VOLUMES="${MAILCOW_PATH}/volumes"

action() {
  echo "$*" >> "${ACTION_LOG}"
}

# prompt TEXT VARNAME -> returns 1 on end of input with nothing read
prompt() {
  local __text="$1" __answer="" __rc
  if [[ "${STANDIN_PROMPTS:-stdout}" == "tty" ]]; then
    IFS= read -r -p "${__text}" __answer
    __rc=$?
  else
    printf '%s' "${__text}"
    IFS= read -r __answer
    __rc=$?
  fi
  printf -v "$2" '%s' "${__answer}"
  if [[ ${__rc} -ne 0 && -z "${__answer}" ]]; then
    return 1
  fi
  return 0
}

# End of input inside one of the script's `while ! valid; do read; done` loops: it never ends.
stdin_closed() {
  exec sleep infinity
}

in_list() { # in_list NAME "a,b c" -> 0 if NAME is in the comma/space separated list
  local item
  for item in ${2//,/ }; do
    [[ "${item,,}" == "$1" ]] && return 0
  done
  return 1
}

docker_check() {
  if [[ "${STANDIN_NO_DOCKER:-}" == "1" ]]; then
    >&2 echo -e "\e[31mCannot find docker in local PATH, exiting...\e[0m"
    exit 1
  fi
}

if [[ ! -z ${MAILCOW_BACKUP_LOCATION} ]]; then
  BACKUP_LOCATION="${MAILCOW_BACKUP_LOCATION}"
fi

if [[ ! ${1} =~ (backup|restore) ]]; then
  echo "First parameter needs to be 'backup' or 'restore'"
  exit 1
fi

if [[ ${1} == "backup" && ! ${2} =~ (crypt|vmail|redis|rspamd|postfix|mysql|all|--delete-days) ]]; then
  echo "Second parameter needs to be 'vmail', 'crypt', 'redis', 'rspamd', 'postfix', 'mysql', 'all' or '--delete-days'"
  exit 1
fi

if [[ -z ${BACKUP_LOCATION} ]]; then
  while [[ -z ${BACKUP_LOCATION} ]]; do
    prompt "Backup location (absolute path, starting with /): " BACKUP_LOCATION || stdin_closed
  done
fi

if [[ ! ${BACKUP_LOCATION} =~ ^/ ]]; then
  echo "Backup directory needs to be given as absolute path (starting with /)."
  exit 1
fi

if [[ -f ${BACKUP_LOCATION} ]]; then
  echo "${BACKUP_LOCATION} is a file!"
  exit 1
fi

if [[ ! -d ${BACKUP_LOCATION} ]]; then
  echo "${BACKUP_LOCATION} is not a directory"
  prompt "Create it now? [y|N] " CREATE_BACKUP_LOCATION
  if [[ ! ${CREATE_BACKUP_LOCATION,,} =~ ^(yes|y)$ ]]; then
    exit 1
  else
    mkdir -p "${BACKUP_LOCATION}"
    chmod 755 "${BACKUP_LOCATION}"
  fi
else
  if [[ ${1} == "backup" ]] && [[ -z $(echo $(stat -Lc %a "${BACKUP_LOCATION}") | grep -oE '[0-9][0-9][5-7]') ]]; then
    echo "${BACKUP_LOCATION} is not write-able for others, that's required for a backup."
    exit 1
  fi
fi

BACKUP_LOCATION=$(echo "${BACKUP_LOCATION}" | sed 's#/$##')
COMPOSE_FILE=${SCRIPT_DIR}/../docker-compose.yml
ENV_FILE=${SCRIPT_DIR}/../.env
THREADS=$(echo ${THREADS:-1})
ARCH=${STANDIN_ARCH:-$(uname -m)}

if ! [[ "${THREADS}" =~ ^[1-9][0-9]?$ ]] ; then
  echo "Thread input is not a number!"
  exit 1
elif [[ "${THREADS}" =~ ^[1-9][0-9]?$ ]] ; then
  echo "Using ${THREADS} Thread(s) for this run."
  echo "Notice: You can set the Thread count with the THREADS Variable before you run this script."
fi

if [ ! -f "${COMPOSE_FILE}" ]; then
  echo "Compose file not found"
  exit 1
fi

if [ ! -f "${ENV_FILE}" ]; then
  echo "Environment file not found"
  exit 1
fi

echo "Using ${BACKUP_LOCATION} as backup/restore location."
echo

source "${SCRIPT_DIR}/../mailcow.conf"

if [[ -z ${COMPOSE_PROJECT_NAME} ]]; then
  echo "Could not determine compose project name"
  exit 1
else
  echo "Found project name ${COMPOSE_PROJECT_NAME}"
  CMPS_PRJ=$(echo ${COMPOSE_PROJECT_NAME} | tr -cd "[0-9A-Za-z-_]")
fi

if grep --help 2>&1 | head -n 1 | grep -q -i "busybox"; then
  >&2 echo -e "\e[31mBusyBox grep detected on local system, please install GNU grep\e[0m"
  exit 1
fi

if [[ "${STANDIN_NO_IMAGE:-}" == "1" ]]; then
  >&2 echo "Error response from daemon: Get \"https://ghcr.io/v2/\": dial tcp: lookup ghcr.io: no such host"
  >&2 echo -e "\e[31mCould not find or pull ${DEBIAN_DOCKER_IMAGE}, exiting...\e[0m"
  exit 1
fi

# Where a component's data sits inside the backup container, and so in its archive (tar -P).
container_path() {
  if [[ "$1" == mysql ]]; then echo /backup_mariadb; else echo "/$1"; fi
}

# backup_volume COMPONENT VOLUME ARCHIVE_NAME
# One `docker run --name mailcow-backup --rm` per component, as the real script does (the fake
# docker CLI runs the command with the mounts mapped to host folders). Its exit status is not
# checked, as in the real script: a failed component leaves its archive missing, the loop goes on.
backup_volume() {
  local comp="$1" out="backup/$3" compress="zstd --rsyncable -T${THREADS}" inside
  inside=$(container_path "${comp}")
  if [[ -n "${STANDIN_SLOW_SECONDS:-}" ]]; then sleep "${STANDIN_SLOW_SECONDS}"; fi
  action "run mailcow-backup backup ${comp} (${CMPS_PRJ}_$2)"
  if in_list "${comp}" "${STANDIN_FAIL_COMPONENT:-}"; then
    >&2 echo "docker: Error response from daemon: failed to create task for container: failed to create shim task: OCI runtime create failed (standin: ${comp} failed on purpose)."
    return 0
  fi
  if in_list "${comp}" "${STANDIN_HANG_COMPONENT:-}"; then
    compress="sh -c 'zstd --rsyncable -T1 && echo \"standin: the container of ${comp} hangs now\" >&2 && exec sleep 2147483647'"
  fi
  docker run --name mailcow-backup --rm \
    -v "${BACKUP_LOCATION}/mailcow-${DATE}":/backup:z \
    -v "$(docker volume ls -qf "name=^${CMPS_PRJ}_$2$")":${inside}:ro,z \
    ${DEBIAN_DOCKER_IMAGE} /bin/tar --warning='no-file-ignored' --use-compress-program="${compress}" -Pcvpf "/${out}" "${inside}"
  if in_list "${comp}" "${STANDIN_TRUNCATE_COMPONENT:-}" && [[ -f "${BACKUP_LOCATION}/mailcow-${DATE}/$3" ]]; then
    truncate -s $(( $(stat -c %s "${BACKUP_LOCATION}/mailcow-${DATE}/$3") / 2 )) "${BACKUP_LOCATION}/mailcow-${DATE}/$3"
  fi
  return 0
}

# backup_mariadb_real IMAGE: mysql of a real datadir (see the header).
backup_mariadb_real() {
  local image="$1" vol sock work srv
  vol="$(docker volume ls -qf "name=^${CMPS_PRJ}_mysql-vol-1$")"
  action "run mailcow-backup backup mysql (${CMPS_PRJ}_mysql-vol-1, mariabackup)"
  if in_list mysql "${STANDIN_FAIL_COMPONENT:-}"; then
    >&2 echo "docker: Error response from daemon: failed to create task for container: failed to create shim task: OCI runtime create failed (standin: mysql failed on purpose)."
    return 0
  fi
  sock=$(mktemp -d /tmp/mdb-XXXXXX) # a socket path must stay under 108 bytes
  work=$(mktemp -d "${TMPDIR:-/tmp}/standin-mariabackup-XXXXXX")
  mariadbd --no-defaults --datadir="${VOLUMES}/mysql-vol-1" --socket="${sock}/s" --pid-file="${sock}/pid" --log-error="${sock}/err.log" \
    --innodb-log-file-size=4M --skip-networking --user=root &
  srv=$!
  local i
  for (( i = 0; i < 600; i++ )); do
    mariadb-admin --no-defaults -S "${sock}/s" -u root ping >/dev/null 2>&1 && break
    sleep 0.05
  done
  local target="/run/mysqld/s"
  [[ "${STANDIN_FAIL_MARIABACKUP:-}" == 1 ]] && target="/run/mysqld/gone"
  docker run --name mailcow-backup --rm --entrypoint= -v "${vol}":/var/lib/mysql/:ro,z -v "${sock}":/run/mysqld:z -v "${work}":/backup_mariadb:z \
    ${image} mariabackup --no-defaults --socket="${target}" --user=root --backup --target-dir=/backup_mariadb
  docker run --name mailcow-backup --rm --entrypoint= -v "${work}":/backup_mariadb:z \
    ${image} mariabackup --no-defaults --prepare --target-dir=/backup_mariadb
  mariadb-admin --no-defaults -S "${sock}/s" -u root shutdown >/dev/null 2>&1
  wait "${srv}" 2>/dev/null
  [[ $(id -u) == 0 ]] && chown -R 999:999 "${work}"
  docker run --name mailcow-backup --rm \
    -v "${BACKUP_LOCATION}/mailcow-${DATE}":/backup:z \
    -v "${work}":/backup_mariadb:ro,z \
    ${image} /bin/tar --warning='no-file-ignored' --use-compress-program="zstd --rsyncable -T${THREADS}" -Pcvpf /backup/backup_mariadb.tar.zst /backup_mariadb
  rm -rf "${sock}" "${work}"
  return 0
}

function backup() {
  DATE=$(date +"%Y-%m-%d-%H-%M-%S")
  mkdir -p "${BACKUP_LOCATION}/mailcow-${DATE}"
  chmod 755 "${BACKUP_LOCATION}/mailcow-${DATE}"
  cp "${SCRIPT_DIR}/../mailcow.conf" "${BACKUP_LOCATION}/mailcow-${DATE}"
  touch "${BACKUP_LOCATION}/mailcow-${DATE}/.$ARCH"
  if [[ "${STANDIN_PRINT_SECRETS:-}" == "1" ]]; then
    echo "mysqldump: [Warning] Using a password on the command line interface can be insecure: --password=${DBPASS}"
    >&2 echo "mysqldump: Got error: 1045: Access denied for user 'root'@'localhost' (using password: ${DBROOT})"
  fi
  docker_check
  while (( "$#" )); do
    case "$1" in
    vmail|all)
      backup_volume vmail vmail-vol-1 backup_vmail.tar.zst
      ;;&
    crypt|all)
      backup_volume crypt crypt-vol-1 backup_crypt.tar.zst
      ;;&
    redis|all)
      docker exec $(docker ps -qf name=redis-mailcow) redis-cli save
      backup_volume redis redis-vol-1 backup_redis.tar.zst
      ;;&
    rspamd|all)
      backup_volume rspamd rspamd-vol-1 backup_rspamd.tar.zst
      ;;&
    postfix|all)
      backup_volume postfix postfix-vol-1 backup_postfix.tar.zst
      ;;&
    mysql|all)
      SQLIMAGE=$(grep -iEo '(mysql|mariadb)\:.+' "${COMPOSE_FILE}")
      if [[ -z "${SQLIMAGE}" ]]; then
        echo "Could not determine SQL image version, skipping backup..."
        shift
        continue
      else
        echo "Using SQL image ${SQLIMAGE}, starting..."
        if [[ -f "${VOLUMES}/mysql-vol-1/mysql/global_priv.frm" ]]; then
          backup_mariadb_real "${SQLIMAGE}"
        else
          backup_volume mysql mysql-vol-1 backup_mariadb.tar.zst
        fi
      fi
      ;;&
    --delete-days)
      shift
      if [[ "${1}" =~ ^[0-9]+$ ]]; then
        action "delete-days ${1}"
        find "${BACKUP_LOCATION}"/mailcow-* -maxdepth 0 -mmin +$((${1}*60*24)) -exec rm -rvf {} \;
      else
        echo "Parameter of --delete-days is not a number."
      fi
      ;;
    esac
    shift
  done
}

# find_archive DIR NAME -> prints path of backup_NAME.tar.zst or .tar.gz
find_archive() {
  if [[ -f "$1/backup_$2.tar.zst" ]]; then
    echo "$1/backup_$2.tar.zst"
  elif [[ -f "$1/backup_$2.tar.gz" ]]; then
    echo "$1/backup_$2.tar.gz"
  fi
}

# restore_volume COMPONENT VOLUME ARCHIVE_BASENAME
restore_volume() {
  local comp="$1" vol="${VOLUMES}/$2" archive
  archive=$(find_archive "${RESTORE_LOCATION%/}" "$3")
  action "run mailcow-backup restore ${comp} (${CMPS_PRJ}_$2)"
  if [[ -z "${archive}" ]]; then
    >&2 echo "/bin/tar: /backup/backup_$3.tar.zst: Cannot open: No such file or directory"
    return 0
  fi
  mkdir -p "${vol}"
  find "${vol}" -mindepth 1 -delete
  local decompress="zstd -d -T${THREADS}"
  [[ "${archive}" == *.zst ]] || decompress="gzip -d"
  if in_list "${comp}" "${STANDIN_HANG_COMPONENT:-}"; then
    decompress="sh -c '${decompress} && echo \"standin: the container of ${comp} hangs now\" >&2 && exec sleep 2147483647'"
  fi
  docker run -i --name mailcow-backup --rm \
    -v "${RESTORE_LOCATION%/}":/backup:z \
    -v "$(docker volume ls -qf "name=^${CMPS_PRJ}_$2$")":$(container_path "${comp}"):z \
    ${DEBIAN_DOCKER_IMAGE} /bin/tar --use-compress-program="${decompress}" -Pxvpf "/backup/${archive##*/}"
  action "restore ${comp}"
}

function restore() {
  docker_check

  if [ "${DOCKER_COMPOSE_VERSION}" == "native" ]; then
    COMPOSE_COMMAND="docker compose"
  elif [ "${DOCKER_COMPOSE_VERSION}" == "standalone" ]; then
    COMPOSE_COMMAND="docker-compose"
  else
    echo -e "\e[31mCan not read DOCKER_COMPOSE_VERSION variable from mailcow.conf! Is your mailcow up to date? Exiting...\e[0m"
    exit 1
  fi

  echo
  echo "Stopping watchdog-mailcow..."
  docker stop $(docker ps -qf name=watchdog-mailcow)
  echo
  RESTORE_LOCATION="${1}"
  shift
  while (( "$#" )); do
    case "$1" in
    vmail)
      docker stop $(docker ps -qf name=dovecot-mailcow)
      restore_volume vmail vmail-vol-1 vmail
      docker start $(docker ps -aqf name=dovecot-mailcow)
      echo
      echo "In most cases it is not required to run a full resync, you can run the command printed below at any time after testing wether the restore process broke a mailbox:"
      echo
      echo "docker exec $(docker ps -qf name=dovecot-mailcow) doveadm force-resync -A '*'"
      echo
      prompt "Force a resync now? [y|N] " FORCE_RESYNC
      if [[ ${FORCE_RESYNC,,} =~ ^(yes|y)$ ]]; then
        docker exec $(docker ps -qf name=dovecot-mailcow) doveadm force-resync -A '*'
      else
        echo "OK, skipped."
      fi
      ;;
    redis)
      docker stop $(docker ps -qf name=redis-mailcow)
      restore_volume redis redis-vol-1 redis
      docker start $(docker ps -aqf name=redis-mailcow)
      ;;
    crypt)
      docker stop $(docker ps -qf name=dovecot-mailcow)
      restore_volume crypt crypt-vol-1 crypt
      docker start $(docker ps -aqf name=dovecot-mailcow)
      ;;
    rspamd)
      BACKUP_ARCH=$(find "${RESTORE_LOCATION}" \( -name '*x86*' -o -name '*aarch*' \) -exec basename {} \; | sed 's/^\.//' | sed 's/^\.//')
      if [[ "${BACKUP_ARCH}" == "" ]]; then
        echo -e "\e[33mCould not find a architecture signature of the loaded backup... Maybe the backup was done before the multiarch update?"
        echo -e "Continuing anyhow. If rspamd is crashing opon boot try remove the rspamd volume with docker volume rm ${CMPS_PRJ}_rspamd-vol-1 after you've stopped the stack.\e[0m"
        docker stop $(docker ps -qf name=rspamd-mailcow)
        restore_volume rspamd rspamd-vol-1 rspamd
        docker start $(docker ps -aqf name=rspamd-mailcow)
      elif [[ $ARCH != "${BACKUP_ARCH}" ]]; then
        echo -e "\e[31mThe Architecture of the backed up mailcow OS is different then your restoring mailcow OS..."
        echo -e "Skipping rspamd due to compatibility issues!\e[0m"
        action "skip rspamd (arch ${BACKUP_ARCH} != ${ARCH})"
      else
        docker stop $(docker ps -qf name=rspamd-mailcow)
        restore_volume rspamd rspamd-vol-1 rspamd
        docker start $(docker ps -aqf name=rspamd-mailcow)
      fi
      ;;
    postfix)
      docker stop $(docker ps -qf name=postfix-mailcow)
      restore_volume postfix postfix-vol-1 postfix
      docker start $(docker ps -aqf name=postfix-mailcow)
      ;;
    mysql|mariadb)
      SQLIMAGE=$(grep -iEo '(mysql|mariadb)\:.+' "${COMPOSE_FILE}")
      if [[ -z "${SQLIMAGE}" ]]; then
        echo "Could not determine SQL image version, skipping restore..."
        shift
        continue
      elif [ ! -f "${RESTORE_LOCATION}/mailcow.conf" ]; then
        echo "Could not find the corresponding mailcow.conf in ${RESTORE_LOCATION}, skipping restore."
        echo "If you lost that file, copy the last working mailcow.conf file to ${RESTORE_LOCATION} and restart the restore process."
        shift
        continue
      else
        prompt "mailcow will be stopped and the currently active mailcow.conf will be modified to use the DB parameters found in ${RESTORE_LOCATION}/mailcow.conf - do you want to proceed? [Y|n] " MYSQL_STOP_MAILCOW
        if [[ ${MYSQL_STOP_MAILCOW,,} =~ ^(no|n|N)$ ]]; then
          echo "OK, skipped."
          action "skip mysql (declined)"
          shift
          continue
        else
          echo "Stopping mailcow..."
          ${COMPOSE_COMMAND} -f ${COMPOSE_FILE} --env-file ${ENV_FILE} down
        fi
        restore_volume mysql mysql-vol-1 mariadb
        echo "Modifying mailcow.conf..."
        source "${RESTORE_LOCATION}/mailcow.conf"
        sed -i --follow-symlinks "/DBNAME/c\DBNAME=${DBNAME}" "${SCRIPT_DIR}/../mailcow.conf"
        sed -i --follow-symlinks "/DBUSER/c\DBUSER=${DBUSER}" "${SCRIPT_DIR}/../mailcow.conf"
        sed -i --follow-symlinks "/DBPASS/c\DBPASS=${DBPASS}" "${SCRIPT_DIR}/../mailcow.conf"
        sed -i --follow-symlinks "/DBROOT/c\DBROOT=${DBROOT}" "${SCRIPT_DIR}/../mailcow.conf"
        action "rewrite mailcow.conf DB parameters"
        source "${SCRIPT_DIR}/../mailcow.conf"
        echo "Starting mailcow..."
        ${COMPOSE_COMMAND} -f ${COMPOSE_FILE} --env-file ${ENV_FILE} up -d
      fi
      ;;
    esac
    shift
  done
  echo
  echo "Starting watchdog-mailcow..."
  docker start $(docker ps -aqf name=watchdog-mailcow)
}

if [[ ${1} == "backup" ]]; then
  action "backup ${*,,}"
  backup ${@,,}
elif [[ ${1} == "restore" ]]; then
  i=1
  declare -A FOLDER_SELECTION
  if [[ $(find "${BACKUP_LOCATION}"/mailcow-* -maxdepth 1 -type d 2> /dev/null| wc -l) -lt 1 ]]; then
    echo "Selected backup location has no subfolders"
    exit 1
  fi
  for folder in $(ls -d "${BACKUP_LOCATION}"/mailcow-*/); do
    echo "[ ${i} ] - ${folder}"
    FOLDER_SELECTION[${i}]="${folder}"
    ((i++))
  done
  echo
  input_sel=0
  while ! [[ "${input_sel}" =~ ^[0-9]+$ ]] || [[ ${input_sel} -lt 1 || ${input_sel} -ge ${i} ]]; do
    prompt "Select a restore point: " input_sel || stdin_closed
  done
  i=1
  echo
  declare -A FILE_SELECTION
  RESTORE_POINT="${FOLDER_SELECTION[${input_sel}]}"
  if [[ -z $(find "${FOLDER_SELECTION[${input_sel}]}" -maxdepth 1 \( -type d -o -type f \) -regex ".*\(redis\|rspamd\|mariadb\|mysql\|crypt\|vmail\|postfix\).*") ]]; then
    echo "No datasets found"
    exit 1
  fi

  echo "[ 0 ] - all"
  FILE_SELECTION[0]=$(find "${FOLDER_SELECTION[${input_sel}]}" -maxdepth 1 \( -type d -o -type f \) \( -name '*.gz' -o -name '*.zst' -o -name 'mysql' \) -printf '%f\n' | sed 's/backup_*//' | sed 's/\.[^.]*$//' | sed 's/\.[^.]*$//')
  # The real script walks `ls -f` (unsorted directory order, differs between hosts): shuffle it.
  if [[ "${STANDIN_DATASET_ORDER:-random}" == "sorted" ]]; then
    FILE_LIST=$(ls -f "${FOLDER_SELECTION[${input_sel}]}" | sort)
  else
    FILE_LIST=$(ls -f "${FOLDER_SELECTION[${input_sel}]}" | shuf)
  fi
  for file in ${FILE_LIST}; do
    if [[ ${file} =~ vmail ]]; then
      echo "[ ${i} ] - Mail directory (/var/vmail)"
      FILE_SELECTION[${i}]="vmail"
      ((i++))
    elif [[ ${file} =~ crypt ]]; then
      echo "[ ${i} ] - Crypt data"
      FILE_SELECTION[${i}]="crypt"
      ((i++))
    elif [[ ${file} =~ redis ]]; then
      echo "[ ${i} ] - Redis DB"
      FILE_SELECTION[${i}]="redis"
      ((i++))
    elif [[ ${file} =~ rspamd ]]; then
      BACKUP_ARCH=$(find "${FOLDER_SELECTION[${input_sel}]}" \( -name '*x86*' -o -name '*aarch*' \) -exec basename {} \; | sed 's/^\.//' | sed 's/^\.//')
      if [[ "${BACKUP_ARCH}" == "" ]]; then
        echo "[ ${i} ] - Rspamd data (unkown Arch detected, restore with caution!)"
        FILE_SELECTION[${i}]="rspamd"
        ((i++))
      elif [[ $ARCH != "${BACKUP_ARCH}" ]]; then
        echo -e "\e[31m[ NaN ] - Rspamd data (incompatible Arch, cannot restore it)\e[0m"
      else
        echo "[ ${i} ] - Rspamd data"
        FILE_SELECTION[${i}]="rspamd"
        ((i++))
      fi
    elif [[ ${file} =~ postfix ]]; then
      echo "[ ${i} ] - Postfix data"
      FILE_SELECTION[${i}]="postfix"
      ((i++))
    elif [[ ${file} =~ mysql ]] || [[ ${file} =~ mariadb ]]; then
      echo "[ ${i} ] - SQL DB"
      FILE_SELECTION[${i}]="mysql"
      ((i++))
    fi
  done
  echo
  input_sel=-1
  while ! [[ "${input_sel}" =~ ^[0-9]+$ ]] || [[ ${input_sel} -lt 0 || ${input_sel} -ge ${i} ]]; do
    prompt "Select a dataset to restore: " input_sel || stdin_closed
  done
  if [[ -n "${STANDIN_EXTRA_PROMPT:-}" ]]; then
    EXTRA_ANSWER=""
    while [[ -z "${EXTRA_ANSWER}" ]]; do
      prompt "${STANDIN_EXTRA_PROMPT} " EXTRA_ANSWER || stdin_closed
    done
  fi
  echo "Restoring ${FILE_SELECTION[${input_sel}]} from ${RESTORE_POINT}..."
  action "restore-selected ${FILE_SELECTION[${input_sel}]//$'\n'/ }"
  restore "${RESTORE_POINT}" ${FILE_SELECTION[${input_sel}]}
fi
